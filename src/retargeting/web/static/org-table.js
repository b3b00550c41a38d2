// The organizations table (#organizations): instant search (200 ms debounce), "Show only
// enabled", sorting and paging by fetching the server-rendered _organizations.html partial;
// and each row's switch saved through PUT /organizations/{id}: flipped at once, spinning
// while saving, reverted with an alert if the server refuses or cannot be reached.
(() => {
  "use strict";

  const section = document.getElementById("organizations");
  const G = window.GreetNow;
  if (!section || !G) return;

  const DEBOUNCE_MS = 200;
  const search = section.querySelector("[data-org-search]");
  const announce = section.querySelector("[data-org-announce]");
  const errors = section.querySelector("[data-org-errors]");
  let timer = 0;
  let inFlight = null;

  search.querySelector("[data-search-submit]")?.setAttribute("hidden", "");

  const table = () => section.querySelector("[data-org-table]");

  function showError(text) {
    errors.replaceChildren(G.message("error", text));
  }

  /** The list's state lives in the address bar: start from it, change one thing, drop the page. */
  function nextQuery(change) {
    const query = new URLSearchParams(location.search);
    change(query);
    query.delete("page");
    return query;
  }

  async function load(query) {
    inFlight?.abort();
    inFlight = new AbortController();
    const current = table();
    current.setAttribute("aria-busy", "true");
    const qs = query.toString();
    const url = `${search.dataset.partial}?${qs ? `${qs}&` : ""}partial=1`;
    try {
      const response = await fetch(url, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
        redirect: "manual",
        signal: inFlight.signal,
      });
      if (response.type === "opaqueredirect") {
        location.reload(); // the session ended: the page sends the browser to sign in
        return;
      }
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.querySelector("[data-org-table]");
      if (!fresh) throw new Error("the answer held no table");
      table().replaceWith(document.importNode(fresh, true));
      history.replaceState(history.state, "", `${location.pathname}${qs ? `?${qs}` : ""}${location.hash}`);
      announce.textContent = fresh.dataset.summary || "";
    } catch (error) {
      if (error.name === "AbortError") return;
      current.removeAttribute("aria-busy");
      showError(`Could not load organizations: ${error.message === "Failed to fetch" ? "the server could not be reached" : error.message}`);
    }
  }

  search.addEventListener("input", (event) => {
    if (event.target.name !== "search") return;
    clearTimeout(timer);
    const value = event.target.value.trim();
    timer = setTimeout(() => {
      load(nextQuery((q) => (value ? q.set("search", value) : q.delete("search"))));
    }, DEBOUNCE_MS);
  });

  search.addEventListener("change", (event) => {
    if (event.target.name !== "enabled") return;
    const on = event.target.checked;
    load(nextQuery((q) => (on ? q.set("enabled", "1") : q.delete("enabled"))));
  });

  search.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    const value = search.elements.namedItem("search").value.trim();
    load(nextQuery((q) => (value ? q.set("search", value) : q.delete("search"))));
  });

  // Sort headers and pager links: same URL as without JavaScript, fetched as the partial.
  section.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-org-link]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    load(new URL(link.href).searchParams);
  });

  // The retargeting switches: optimistic, reverted on failure.
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-org-toggle] [role='switch']");
    if (!button) return;
    event.preventDefault();
    if (button.disabled || button.getAttribute("aria-busy") === "true") return;
    const form = button.closest("[data-org-toggle]");
    const name = form.dataset.orgName;
    const was = button.getAttribute("aria-checked") === "true";

    button.setAttribute("aria-checked", String(!was));
    button.setAttribute("aria-busy", "true");
    const result = await G.api(form.dataset.api, { method: "PUT", body: { retargeting_enabled: !was } });
    button.removeAttribute("aria-busy");

    if (!result.ok) {
      button.setAttribute("aria-checked", String(was));
      showError(`Could not update ${name}: ${G.reason(result)}`);
      return;
    }
    const on = Boolean(result.data?.retargeting_enabled);
    button.setAttribute("aria-checked", String(on));
    button.value = on ? "false" : "true";
    errors.replaceChildren();
    G.toast("success", `${on ? "Enabled" : "Disabled"} retargeting for ${name}`, "", "org");
    G.refreshRegions(["summary", "audit"]);
  });
})();
