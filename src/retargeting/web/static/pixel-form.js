// The pixel form ([data-pixel-form]): saved through PUT /pixel without a reload. Save stays
// disabled until something changed, spins while saving, then toasts the outcome; field
// errors (the server's, or the digits check done here first) appear next to their field.
(() => {
  "use strict";

  const form = document.querySelector("[data-pixel-form]");
  const G = window.GreetNow;
  if (!form || !G) return;

  const LABELS = { pixel_id: "Pixel ID", access_token: "Access Token", test_event_code: "Test Event Code" };
  const REGIONS = ["alerts", "summary", "token-hint", "test-event", "delivery", "org-table", "audit"];
  const save = form.querySelector("[data-save]");
  const saveLabel = form.querySelector("[data-save-label]");
  const fields = {
    enabled: form.elements.namedItem("enabled"),
    pixel_id: form.elements.namedItem("pixel_id"),
    access_token: form.elements.namedItem("access_token"),
    test_event_code: form.elements.namedItem("test_event_code"),
  };

  const values = () => ({
    enabled: fields.enabled.checked,
    pixel_id: fields.pixel_id.value.trim(),
    test_event_code: fields.test_event_code.value.trim(),
    access_token: fields.access_token.value.trim(),
  });

  // What the server has; a 422 page starts from the stored values, not the rejected ones.
  let saved = { ...values(), access_token: "" };
  if (form.dataset.stored) saved = { ...JSON.parse(form.dataset.stored), access_token: "" };
  let saving = false;

  const changed = () => {
    const now = values();
    return (
      now.enabled !== saved.enabled ||
      now.pixel_id !== saved.pixel_id ||
      now.test_event_code !== saved.test_event_code ||
      now.access_token !== ""
    );
  };

  // aria-disabled (not disabled) so the button keeps focus after a save.
  const refreshButton = () => save.setAttribute("aria-disabled", String(saving || !changed()));
  form.addEventListener("input", refreshButton);
  form.addEventListener("change", refreshButton);
  refreshButton();

  function describedBy(input, id, add) {
    const ids = new Set((input.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean));
    if (add) ids.add(id);
    else ids.delete(id);
    input.setAttribute("aria-describedby", [...ids].join(" "));
  }

  function showError(name, text) {
    const input = fields[name];
    const id = `${input.id}-error`;
    let note = document.getElementById(id);
    if (!note) {
      note = document.createElement("p");
      note.className = "field__error";
      note.id = id;
      input.closest(".field").append(note);
    }
    note.textContent = text;
    input.setAttribute("aria-invalid", "true");
    describedBy(input, id, true);
  }

  function clearErrors() {
    for (const name of Object.keys(LABELS)) {
      const input = fields[name];
      const id = `${input.id}-error`;
      document.getElementById(id)?.remove();
      input.removeAttribute("aria-invalid");
      describedBy(input, id, false);
    }
  }

  function setBusy(busy) {
    saving = busy;
    if (busy) save.setAttribute("aria-busy", "true");
    else save.removeAttribute("aria-busy");
    saveLabel.textContent = busy ? "Saving…" : "Save";
    refreshButton();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (saving || !changed()) return;
    clearErrors();
    const now = values();
    if (now.pixel_id && !/^[0-9]+$/.test(now.pixel_id)) {
      const text = "Pixel ID must be the pixel's numeric ID (digits only).";
      showError("pixel_id", text);
      fields.pixel_id.focus();
      G.toast("error", "Failed to save settings", text, "pixel");
      return;
    }
    const body = { pixel_id: now.pixel_id, test_event_code: now.test_event_code, enabled: now.enabled };
    if (now.access_token) body.access_token = now.access_token;

    setBusy(true);
    const result = await G.api(form.dataset.api, { method: "PUT", body });
    setBusy(false);

    if (result.ok) {
      const pixel = result.data;
      fields.access_token.value = "";
      fields.pixel_id.value = pixel.pixel_id;
      fields.test_event_code.value = pixel.test_event_code;
      fields.enabled.checked = pixel.enabled;
      saved = { ...values(), access_token: "" };
      refreshButton();
      G.toast("success", "Settings saved", "", "pixel");
      G.refreshRegions(REGIONS);
      return;
    }
    let first = null;
    if (result.status === 422 && Array.isArray(result.data?.detail)) {
      for (const problem of result.data.detail) {
        const name = problem.loc?.[problem.loc.length - 1];
        if (name in LABELS) {
          showError(name, `${LABELS[name]} ${problem.msg}.`);
          first ??= fields[name];
        }
      }
    }
    first?.focus();
    G.toast("error", "Failed to save settings", G.reason(result), "pixel");
  });
})();
