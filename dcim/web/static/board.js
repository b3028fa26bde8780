// dcim board: live fragments over Server-Sent Events, and the operator's actions.
// No framework, no build step: the server renders every fragment, this only swaps them in.
(() => {
  "use strict";
  const body = document.body;
  const meta = (name) => {
    const el = document.querySelector(`meta[name="${name}"]`);
    return el ? el.content : "";
  };
  const live = document.getElementById("live");
  const page = meta("dcim-page");
  let updates = 0;

  function keepOpen(el) {
    return new Set(Array.from(el.querySelectorAll("details[open]"))
      .map((d) => d.closest("[data-incident]")?.dataset.incident).filter(Boolean));
  }

  function swap(id, html) {
    const el = document.getElementById(id);
    if (!el) return;
    const open = keepOpen(el);
    el.innerHTML = html;
    for (const incident of open) {
      const item = el.querySelector(`[data-incident="${CSS.escape(incident)}"] > details`);
      if (item) item.open = true;
    }
  }

  function replace(id, html) {
    const el = document.getElementById(id);
    if (el) el.outerHTML = html;
  }

  function connect() {
    const source = new EventSource("/events?page=" + encodeURIComponent(page));
    source.addEventListener("fragments", (event) => {
      const fragments = JSON.parse(event.data);
      for (const [id, html] of Object.entries(fragments)) {
        if (id.startsWith("=")) replace(id.slice(1), html);  // a cell: the element itself
        else swap(id, html);
      }
      updates += 1;
      body.dataset.updates = String(updates);
      live.textContent = `${body.dataset.msgLive} ${new Date().toLocaleTimeString()}`;
      live.className = "live ok";
    });
    source.addEventListener("open", () => { live.className = "live ok"; });
    source.addEventListener("error", () => {
      live.textContent = body.dataset.msgLost;
      live.className = "live lost";
    });
  }

  function toast(text, ok) {
    const el = document.getElementById("toast");
    el.textContent = text;
    el.className = ok ? "ok" : "refused";
    el.dataset.result = ok ? "ok" : "refused";
  }

  async function act(url, data, okText) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": meta("dcim-csrf") },
        body: JSON.stringify(data),
      });
    } catch (error) {
      toast(`${body.dataset.msgRefused} ${error}`, false);
      return;
    }
    let reason = String(response.status);
    try { reason = (await response.json()).error || reason; } catch (_) { /* not JSON */ }
    toast(response.ok ? okText : `${body.dataset.msgRefused} ${reason}`, response.ok);
  }

  const dialog = document.getElementById("silence-dialog");
  document.addEventListener("click", (event) => {
    const ack = event.target.closest("button.ack");
    if (ack) {
      act(`/api/v1/incidents/${encodeURIComponent(ack.dataset.incident)}/ack`, { comment: "" },
        body.dataset.msgAcknowledged);
      return;
    }
    const silence = event.target.closest("button.silence");
    if (silence && dialog) {
      dialog.querySelector("input[name=scope]").value = silence.dataset.scope;
      dialog.showModal();
    }
  });
  if (dialog) {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "silence") return;
      const form = dialog.querySelector("form");
      const data = Object.fromEntries(new FormData(form).entries());
      act("/api/v1/silences", data, body.dataset.msgSilenced);
    });
  }
  connect();
})();
