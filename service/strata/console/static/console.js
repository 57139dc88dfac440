// The console's only script: conveniences, never needed for a page to work.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Choosing a version to compare with shows the diff at once.
  for (const select of document.querySelectorAll("select.autosubmit")) {
    select.addEventListener("change", () => { if (select.value) select.form.submit(); });
  }
  // A chosen file is shown in the text area, so it can be read (and edited) before publishing.
  const file = document.querySelector('input[type="file"][name="file"]');
  const content = document.getElementById("content");
  if (file && content) {
    file.addEventListener("change", () => {
      const chosen = file.files && file.files[0];
      if (!chosen) return;
      chosen.text().then((text) => { content.value = text; file.value = ""; });
    });
  }
});
