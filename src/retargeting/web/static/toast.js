// Shared by the page's scripts: toasts, inline messages, JSON calls with the CSRF header,
// and refreshing server-rendered regions ([data-region]) after a change. Builds DOM with
// textContent only; server HTML is parsed with DOMParser (the server escaped it).
(() => {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const TOAST_SECONDS = 3;
  const ICONS = {
    success: ["M6.5 10.2l2.3 2.3 4.7-4.9"],
    error: ["M10 5.75v5", "M10 13.6v.4"],
  };

  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

  function icon(kind, className) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 20 20");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", className);
    const circle = document.createElementNS(SVG_NS, "circle");
    for (const [name, value] of Object.entries({ cx: 10, cy: 10, r: 8.25, fill: "none", stroke: "currentColor", "stroke-width": 1.5 })) {
      circle.setAttribute(name, String(value));
    }
    svg.append(circle);
    for (const d of ICONS[kind]) {
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", d);
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "1.8");
      path.setAttribute("stroke-linecap", "round");
      path.setAttribute("stroke-linejoin", "round");
      svg.append(path);
    }
    return svg;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** The same markup as _flash.html: role=status for success, role=alert for an error. */
  function message(kind, text, details = []) {
    const box = el("div", `flash flash--${kind}`);
    box.setAttribute("role", kind === "success" ? "status" : "alert");
    box.append(icon(kind, "flash__icon"));
    const body = el("div", "flash__body");
    body.append(el("p", "flash__message", text));
    if (details.length) {
      const list = el("ul", "flash__details");
      for (const detail of details) list.append(el("li", "", detail));
      body.append(list);
    }
    box.append(body);
    return box;
  }

  /** A toast: success dismisses itself after 3 s; an error stays until closed. A new toast
   *  of the same `group` replaces the older ones (a stale "Failed to save" after a success). */
  function toast(kind, title, detail = "", group = "") {
    const region = document.querySelector("[data-toasts]");
    if (!region) return null;
    if (group) {
      for (const old of region.querySelectorAll(`[data-group="${group}"]`)) old.remove();
    }
    const node = el("div", `toast toast--${kind}`);
    if (group) node.dataset.group = group;
    node.setAttribute("role", kind === "success" ? "status" : "alert");
    node.append(icon(kind, "toast__icon"));
    const text = el("div", "toast__text");
    text.append(el("p", "toast__title", title));
    if (detail) text.append(el("p", "toast__detail", detail));
    node.append(text);
    const close = el("button", "toast__close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    node.append(close);
    const dismiss = () => {
      node.classList.add("is-leaving");
      setTimeout(() => node.remove(), 200);
    };
    close.addEventListener("click", dismiss);
    if (kind === "success") setTimeout(dismiss, TOAST_SECONDS * 1000);
    region.append(node);
    return node;
  }

  /** fetch + JSON + CSRF header; never throws: {ok, status, data, network}. */
  async function api(url, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json", "X-CSRF-Token": csrf() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      const response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = null;
      }
      return { ok: response.ok, status: response.status, data, network: false };
    } catch {
      return { ok: false, status: 0, data: null, network: true };
    }
  }

  /** Why a call failed, in words for the admin. */
  function reason(result) {
    if (result.network) return "the server could not be reached; check your connection and try again";
    if (result.status === 401) return "your session has expired; reload the page to sign in again";
    const detail = result.data?.detail;
    if (typeof detail === "string" && detail) return detail;
    if (Array.isArray(detail) && detail.length) return detail.map((d) => d.msg).join("; ");
    return `the server answered ${result.status}`;
  }

  /** Re-render parts of the page from the server without a reload (focus stays where it is). */
  async function refreshRegions(names) {
    let response;
    try {
      response = await fetch(location.pathname + location.search, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
        redirect: "manual",
      });
    } catch {
      return;
    }
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const name of names) {
      const fresh = doc.querySelector(`[data-region="${name}"]`);
      const current = document.querySelector(`[data-region="${name}"]`);
      if (fresh && current && !current.contains(document.activeElement)) {
        current.replaceWith(document.importNode(fresh, true));
      }
    }
  }

  window.GreetNow = { csrf, toast, message, api, reason, refreshRegions };
})();
