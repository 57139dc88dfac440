"""The last known good rulesets, kept in a local file for a start without the database.

Each time a replica starts serving a different set of versions it writes
them here: the rule files' text, which version is active, and the traffic
splits with their arms' text. Written to a temporary file in the same
directory, flushed and renamed over the old one, so a crash leaves the old
file or the new one, never half of either. A replica that starts while the
database is down compiles this file and serves it, as it would have
served it a moment before the outage; without the file it reports not
ready rather than serving no rules.

The file names the database it came from (a digest of the URL), so a
replica pointed at another database never serves these rules.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from strata.splits import Split

FORMAT = 1
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedRules:
    """Active versions by ruleset, splits by ruleset, and the text of every version they name."""

    active: Mapping[str, int]
    splits: Mapping[str, Split]
    texts: Mapping[tuple[str, int], str]


def database_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


class SavedRulesFile:
    """Reads and atomically replaces the saved rules of one database."""

    def __init__(self, path: Path, database_url: str) -> None:
        self.path = path
        self._database = database_id(database_url)

    def save(self, rules: SavedRules) -> None:
        """Replace the file; a failure is logged, never raised: serving matters more than saving."""
        document = {
            "format": FORMAT,
            "database": self._database,
            "active": dict(rules.active),
            "splits": {
                name: {"arms": split.arms, "seed": split.seed, "coverage": split.coverage}
                for name, split in rules.splits.items()
            },
            "versions": [
                {"name": name, "version": version, "text": text}
                for (name, version), text in sorted(rules.texts.items())
            ],
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(handle, "wb") as output:
                    output.write(orjson.dumps(document))
                    output.flush()
                    os.fsync(output.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("could not save the active rulesets to %s: %s", self.path, exc)

    def load(self) -> SavedRules | None:
        """The saved rules, or None when there are none for this database (or they cannot be read)."""
        try:
            document = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("cannot read the saved rulesets %s: %s", self.path, exc)
            return None
        if document.get("format") != FORMAT or document.get("database") != self._database:
            log.warning("%s holds another database's rulesets; not serving them", self.path)
            return None
        return SavedRules(
            active=document["active"],
            splits={
                name: Split.parse(split["arms"], split["seed"], split["coverage"])
                for name, split in document["splits"].items()
            },
            texts={(item["name"], item["version"]): item["text"] for item in document["versions"]},
        )
