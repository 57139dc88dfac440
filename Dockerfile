# Strata service image: build a wheel in one stage, run it as a non-root user in another.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 strata
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY rules ./rules
ENV STRATA_RULES_DIR=/app/rules \
    STRATA_DATABASE_URL=sqlite:////app/var/strata.db \
    PYTHONUNBUFFERED=1
RUN mkdir -p /app/var && chown strata /app/var
USER strata
EXPOSE 50051 8080
CMD ["strata", "serve", "--host", "0.0.0.0", "--migrate"]
