// policygate console: progressive only. Every page reads and works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // a filter choice applies at once (the Filter button does the same without JavaScript)
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form && select.form.requestSubmit());
  }
});
