// "Send test event" ([data-test-event-form]): POST /test-event through the API and show
// Meta's answer (events received and fbtrace_id, or its error) right under the button.
(() => {
  "use strict";

  const G = window.GreetNow;
  if (!G) return;

  function answer(result) {
    const data = result.data;
    if (result.ok && data?.ok) {
      const details = [`Test event code: ${data.test_event_code}`];
      if (data.fbtrace_id) details.push(`fbtrace_id: ${data.fbtrace_id}`);
      details.push(...(data.messages || []));
      const events = data.events_received === 1 ? "1 event" : `${data.events_received.toLocaleString("en-US")} events`;
      return G.message("success", `Meta received ${events}.`, details);
    }
    if (result.ok && data && data.ok === false) {
      const error = data.error;
      const details = [`Test event code: ${data.test_event_code}`];
      if (error.code !== null) details.push(error.error_subcode !== null ? `Code ${error.code}, subcode ${error.error_subcode}` : `Code ${error.code}`);
      if (error.fbtrace_id) details.push(`fbtrace_id: ${error.fbtrace_id}`);
      const unreachable = error.code === null && error.http_status === null;
      const text = unreachable
        ? `Could not reach Meta: ${error.message}`
        : `Meta refused the test event: ${error.error_user_msg || error.message}`;
      return G.message("error", text, details);
    }
    if (result.status === 409) return G.message("error", G.reason(result));
    return G.message("error", `Could not send the test event: ${G.reason(result)}`);
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("[data-test-event-form]");
    if (!form) return;
    event.preventDefault();
    const button = form.querySelector("[data-test-event-button]");
    const label = button.querySelector("[data-label]");
    if (button.disabled || button.getAttribute("aria-busy") === "true") return;
    const output = form.closest("[data-region]").querySelector("[data-test-result]");

    button.setAttribute("aria-busy", "true");
    label.textContent = "Sending…";
    output.replaceChildren();
    const result = await G.api(form.dataset.api, { method: "POST" });
    button.removeAttribute("aria-busy");
    label.textContent = "Send test event";
    output.replaceChildren(answer(result));
    G.refreshRegions(["audit"]);
  });
})();
