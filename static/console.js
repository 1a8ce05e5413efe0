// Progressive enhancement only: every page works without this file.
// - compose: the reach estimate follows the form as it changes (POST /console/reach)
// - sending: progress bars poll the delivery progress and update in place
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function fmt(n) {
  return Number(n).toLocaleString(document.documentElement.lang === "en" ? "en-US" : "ja-JP");
}

function setupReach() {
  const panel = document.getElementById("reach");
  const form = document.getElementById("compose-form");
  if (!panel || !form) return;
  const live = document.getElementById("reach-live");
  let timer = null;
  let seq = 0;
  async function refresh() {
    const mine = ++seq;
    panel.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(panel.dataset.reachUrl, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      });
      const data = await response.json();
      if (mine !== seq) return;
      live.replaceChildren();
      if (!response.ok) {
        live.append(el("p", data.error || response.statusText, { class: "field-error" }));
        return;
      }
      const p = el("p");
      p.append(el("strong", fmt(data.reachable), { id: "reach-reachable" }), " " + panel.dataset.people + " ");
      p.append(el("span", "（" + panel.dataset.matching + " " + fmt(data.total) + "）", { class: "hint" }));
      const ul = el("ul", null, { id: "reach-channels" });
      for (const c of data.by_channel) ul.append(el("li", c.label + ": " + fmt(c.count)));
      live.append(p, ul);
      if (data.by_ward.length) {
        const details = el("details");
        details.append(el("summary", panel.dataset.byWard));
        const wards = el("ul", null, { id: "reach-wards" });
        for (const w of data.by_ward) wards.append(el("li", w.ward + ": " + fmt(w.count)));
        details.append(wards);
        live.append(details);
      }
    } catch (err) {
      // Network hiccup: keep the last estimate; the Preview button still works.
    } finally {
      if (mine === seq) panel.removeAttribute("aria-busy");
    }
  }
  const schedule = () => { clearTimeout(timer); timer = setTimeout(refresh, 400); };
  form.addEventListener("change", schedule);
  form.addEventListener("input", (e) => { if (e.target.type === "number") schedule(); });
}

function setupProgress() {
  for (const box of document.querySelectorAll("[data-progress-url]")) {
    const url = box.dataset.progressUrl;
    const initialStatus = box.dataset.status;
    const shown = [...box.querySelectorAll("[data-channel]")].map((n) => n.dataset.channel).sort().join(",");
    async function poll() {
      let data;
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) { setTimeout(poll, 5000); return; }
        data = await response.json();
      } catch (err) { setTimeout(poll, 5000); return; }
      const channels = data.channels || {};
      if (data.status !== initialStatus || Object.keys(channels).sort().join(",") !== shown) {
        // A new state: let the server draw it (the actions change too); drop a stale notice.
        window.location.replace(window.location.pathname);
        return;
      }
      for (const row of box.querySelectorAll("[data-channel]")) {
        const c = channels[row.dataset.channel];
        for (const span of row.querySelectorAll("[data-count]")) span.textContent = fmt(c[span.dataset.count] || 0);
        const bar = row.querySelector("progress");
        bar.max = Math.max(1, c.total);
        bar.value = (c.sent || 0) + (c.failed || 0) + (c.skipped || 0) + (c.cancelled || 0);
      }
      const recipients = box.querySelector('[data-field="recipients"]');
      if (recipients) recipients.textContent = fmt(data.recipients);
      const counting = box.querySelector('[data-field="counting"]');  // a big snapshot comes in parts
      if (counting) counting.hidden = data.status !== "sending" || data.snapshot_complete !== false;
      setTimeout(poll, data.status === "scheduled" ? 3000 : 1500);
    }
    setTimeout(poll, 1500);
  }
}

// A panel showing a state that will change (a mode switch in progress): poll its API and
// redraw the page when the watched value changes.
function setupWatch() {
  for (const box of document.querySelectorAll("[data-watch-url]")) {
    const path = box.dataset.watchKey.split(".");
    async function poll() {
      try {
        const response = await fetch(box.dataset.watchUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (response.ok) {
          const data = await response.json();
          const value = path.reduce((o, k) => (o == null ? o : o[k]), data);
          if (String(value) !== box.dataset.watchValue) { window.location.replace(window.location.pathname); return; }
        }
      } catch (err) { /* try again */ }
      setTimeout(poll, 2000);
    }
    setTimeout(poll, 1500);
  }
}

// Forms that call the JSON API directly (test sends, test endpoints): the rules live behind
// the API, the page only sends the fields as JSON with the session's CSRF token.
function setupApiForms() {
  for (const form of document.querySelectorAll("form[data-api-url]")) {
    const out = form.querySelector("[data-api-result]") || document.getElementById(form.dataset.apiResult);
    form.removeAttribute("hidden");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {};
      for (const [k, v] of new FormData(form)) if (v !== "") body[k] = v;
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      out.replaceChildren(el("p", form.dataset.busy || "…"));
      try {
        const response = await fetch(form.dataset.apiUrl, {
          method: form.dataset.apiMethod || "POST",
          headers: { "X-CSRF-Token": csrfToken(), "Content-Type": "application/json", Accept: "application/json" },
          body: (form.dataset.apiMethod || "POST") === "DELETE" ? undefined : JSON.stringify(body),
          credentials: "same-origin",
        });
        const data = response.status === 204 ? {} : await response.json();
        out.replaceChildren();
        if (!response.ok) {
          const err = (data && data.error) || {};
          const p = el("p", err.message || response.statusText, { class: "field-error" });
          const ul = el("ul");
          for (const [k, v] of Object.entries(err.fields || {})) ul.append(el("li", k + ": " + v));
          out.append(p, ul);
          return;
        }
        if (form.dataset.reload !== undefined) { window.location.replace(window.location.pathname); return; }
        if (Array.isArray(data.results)) {
          const ul = el("ul");
          for (const r of data.results) ul.append(el("li", r.channel + ": " + r.outcome + (r.detail ? " (" + r.detail + ")" : ""), { "data-outcome": r.outcome }));
          out.append(el("p", form.dataset.done || "OK"), ul);
        } else {
          out.append(el("p", form.dataset.done || "OK"));
        }
      } catch (err) {
        out.replaceChildren(el("p", String(err), { class: "field-error" }));
      } finally {
        if (button) button.disabled = false;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();  // screen readers hear what went wrong first
  setupReach(); setupProgress(); setupWatch(); setupApiForms(); });
