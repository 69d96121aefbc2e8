// credits · builder demo. Plain modern JavaScript: no framework, no build
// step, no network beyond this server's public API (and three demo-only
// routes under /demo/). The page holds workspace session tokens, never an
// API key.

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const enc = encodeURIComponent;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nf = new Intl.NumberFormat("en-US");
const fmt = (n) => nf.format(n);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// ---------- state ----------

const state = {
  sessions: new Map(), // workspace id → {workspace_id, name, token, expires_at}
  order: [],
  ws: "",
  catalog: { operations: [], plans: [] },
  ops: new Map(),
  plans: new Map(),
  balance: null, // the active workspace's last balance event
  plansOf: new Map(), // workspace id → plan id, for the switcher
  target: null, // the canvas field a rewrite goes to
  busy: false,
  sections: 0,
  ledgerAll: false,
};

const SHORT = {
  content_rewrite: "Rewrites",
  section_generation: "Sections",
  image_1k: "Images 1K",
  image_2k: "Images 2K",
  avatar_selection: "Avatars",
};
const ONE = {
  content_rewrite: "Rewrite",
  section_generation: "Section",
  image_1k: "Image 1K",
  image_2k: "Image 2K",
  avatar_selection: "Avatar",
};
const EXAMPLE = { section_generation: 10, content_rewrite: 15, image_1k: 3 };
const TYPE_LABEL = {
  grant: "Monthly credits",
  expire: "Expired",
  upgrade: "Plan upgrade",
  hold: "Held",
  release: "Released",
  capture: "Charged",
  adjust: "Adjustment",
};
const FALLBACK_COLORS = ["#0f8a7e", "#5b6ee1", "#e2a33a", "#d9577a", "#7c8b9c", "#8f5bd6", "#3a9bd9"];

const cost = (op) => (state.ops.get(op) || { cost: 0 }).cost;
const costLabel = (op) => {
  const c = cost(op);
  return c === 0 ? "Free" : `${fmt(c)} credit${c === 1 ? "" : "s"}`;
};
const opName = (op) => (state.ops.get(op) || { name: op }).name;
const planName = (id) => (state.plans.get(id) || { name: id }).name;
function opColor(op) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(`--op-${op}`).trim();
  if (v) return v;
  const i = state.catalog.operations.findIndex((o) => o.id === op);
  return FALLBACK_COLORS[(i < 0 ? 0 : i) % FALLBACK_COLORS.length];
}
function price(plan) {
  if (!plan.price_cents) return "free";
  const cur = (plan.currency || "usd").toUpperCase();
  const whole = plan.price_cents % 100 === 0;
  const s = new Intl.NumberFormat("en-US", { style: "currency", currency: cur, maximumFractionDigits: whole ? 0 : 2 }).format(plan.price_cents / 100);
  return `${s}/month`;
}
const session = () => state.sessions.get(state.ws);

function newKey() {
  if (crypto.randomUUID) return "web-" + crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return "web-" + [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, problem, network = false) {
    super((problem && problem.detail) || (network ? "network error" : `HTTP ${status}`));
    this.status = status;
    this.problem = problem || {};
    this.network = network;
  }
  get code() {
    return this.problem.code || "";
  }
}

let refreshing = null;
function refreshSessions() {
  if (!refreshing) {
    refreshing = fetch("/demo/sessions", { cache: "no-store" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`sessions: HTTP ${r.status}`))))
      .then((list) => {
        for (const s of list) state.sessions.set(s.workspace_id, s);
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

async function ensureFreshToken() {
  const s = session();
  if (s && Date.parse(s.expires_at) - Date.now() < 5 * 60 * 1000) {
    await refreshSessions().catch(() => {});
  }
}

// api calls the public API with the active workspace's session token. A
// retry after a network error or a 401/429/503 reuses the Idempotency-Key:
// the server charges once.
async function api(path, { method = "GET", body, key, auth = true } = {}) {
  if (auth) await ensureFreshToken();
  let refreshed = false;
  const retriable = method === "GET" || !!key;
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: "application/json" };
    if (auth) headers.Authorization = "Bearer " + session().token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (key) headers["Idempotency-Key"] = key;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
    } catch (e) {
      if (retriable && attempt < 2) {
        await sleep(400 * (attempt + 1));
        continue;
      }
      throw new ApiError(0, null, true);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (res.ok) return data;
    const code = data && data.code;
    if (res.status === 401 && auth && !refreshed) {
      refreshed = true;
      await refreshSessions().catch(() => {});
      continue;
    }
    if (code === "request_in_progress" && attempt < 30) {
      await sleep(500);
      continue;
    }
    if ((res.status === 429 || res.status === 503) && retriable && attempt < 2) {
      const ra = Number(res.headers.get("Retry-After")) || 1;
      await sleep(Math.min(ra, 5) * 1000);
      continue;
    }
    throw new ApiError(res.status, data);
  }
}

const wsPath = (rest = "") => `/v1/workspaces/${enc(state.ws)}${rest}`;

// ---------- balance stream ----------

let es = null;
let esTimer = 0;
let esBackoff = 1000;

function setLive(s) {
  const live = $("#live");
  live.dataset.state = s;
  $("#live-text").textContent = { live: "live", connecting: "connecting", reconnecting: "reconnecting" }[s];
  live.title = s === "live" ? "The count follows the server's balance stream" : "Waiting for the balance stream";
}

function connectStream() {
  if (es) es.close();
  clearTimeout(esTimer);
  const ws = state.ws;
  setLive("connecting");
  const src = new EventSource(`${wsPath("/balance/stream")}?access_token=${enc(session().token)}`);
  es = src;
  src.addEventListener("balance", (ev) => {
    if (es !== src || state.ws !== ws) return;
    esBackoff = 1000;
    setLive("live");
    onBalance(JSON.parse(ev.data));
  });
  src.addEventListener("error", () => {
    if (es !== src) return;
    setLive("reconnecting");
    if (src.readyState === EventSource.CLOSED) {
      // Refused (an expired token, a restart): new tokens, then again.
      esTimer = setTimeout(async () => {
        await refreshSessions().catch(() => {});
        if (es === src) connectStream();
      }, esBackoff);
      esBackoff = Math.min(esBackoff * 2, 30000);
    }
  });
}

function onBalance(b) {
  const prev = state.balance;
  state.balance = b;
  state.plansOf.set(b.workspace_id, b.plan);
  for (const e of $$("[data-balance]")) {
    e.textContent = fmt(b.available);
    e.dataset.value = String(b.available);
  }
  if (prev && prev.workspace_id === b.workspace_id && prev.available !== b.available) {
    showDelta(b.available - prev.available);
  }
  updateLow();
  $("#stat-used").textContent = fmt(b.used);
  $("#stat-held").textContent = fmt(b.held);
  $("#stat-granted").textContent = fmt(b.granted);
  const g = Math.max(b.granted, 1);
  $("#meter-used").style.width = `${Math.min(100, (b.used / g) * 100)}%`;
  $("#meter-held").style.width = `${Math.min(100, (b.held / g) * 100)}%`;
  const plan = state.plans.get(b.plan);
  $("#stat-plan").textContent = `${planName(b.plan)} plan · ${fmt(b.monthly_credits)} credits a month${plan ? " · " + price(plan) : ""}`;
  renderReset(b);
  const d = (t) => new Date(t).toLocaleDateString(undefined, { month: "short", day: "numeric" });
  $("#stat-cycle").replaceChildren("This cycle: ", el("b", { text: `${d(b.cycle_start)} – ${d(b.cycle_end)}` }));
  renderSwitcher();
  scheduleUsage();
}

function showDelta(d) {
  const box = $("#chat-credits-box");
  for (const old of $$(".delta", box)) old.remove();
  const tag = el("span", { class: "delta" + (d > 0 ? " up" : ""), "aria-hidden": "true", text: (d > 0 ? "+" : "−") + fmt(Math.abs(d)) });
  box.append(tag);
  setTimeout(() => tag.remove(), 1700);
}

function updateLow() {
  const b = state.balance;
  const mode = currentMode();
  $("#chat-credits-box").classList.toggle("is-low", !!b && b.available < cost(mode));
}

function renderReset(b) {
  const end = new Date(b.cycle_end);
  const days = Math.max(0, Math.ceil((end - Date.now()) / 86400000));
  const when = end.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  const p = $("#reset-date");
  p.replaceChildren("Credits reset on ", el("b", { text: when }), ` (in ${days} day${days === 1 ? "" : "s"}) to ${fmt(b.monthly_credits)}; unused credits do not roll over.`);
}

// ---------- workspaces ----------

function renderSwitcher() {
  const box = $("#workspace-switcher");
  if (!box.children.length) {
    for (const id of state.order) {
      box.append(
        el("button", { type: "button", class: "seg", "data-ws": id, "aria-pressed": "false", onclick: () => switchTo(id) }, el("span", { class: "seg-plan" }), el("small", { text: id })),
      );
    }
  }
  for (const b of $$(".seg", box)) {
    const id = b.dataset.ws;
    const plan = state.plansOf.get(id);
    b.querySelector(".seg-plan").textContent = plan ? planName(plan) : state.sessions.get(id).name.replace(/^Demo /, "");
    b.setAttribute("aria-pressed", String(id === state.ws));
    b.title = `Switch to ${id}`;
  }
}

function switchTo(id, { quiet = false } = {}) {
  if (!state.sessions.has(id)) return;
  if (id === state.ws && es) return;
  state.ws = id;
  state.balance = null;
  state.ledgerAll = false;
  if (location.hash !== "#" + id) history.replaceState(null, "", "#" + id);
  for (const e of $$("[data-balance]")) {
    e.textContent = "…";
    delete e.dataset.value;
  }
  for (const slot of ["#chat-alert", "#image-alert", "#avatar-alert"]) $(slot).replaceChildren();
  lastChart = null;
  $("#chart").replaceChildren(el("p", { class: "chart-empty loading", text: "Loading the ledger…" }));
  $("#ledger-body").replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "loading", text: "Loading…" })));
  $("#ledger-body").dataset.available = "";
  renderSwitcher();
  connectStream();
  if (!quiet) log("ai", `Switched to ${id}. Its credits are shared by everyone in that workspace.`);
}

async function loadPlans() {
  await Promise.all(
    state.order.map(async (id) => {
      try {
        const r = await fetch(`/v1/workspaces/${enc(id)}/balance`, { headers: { Authorization: "Bearer " + state.sessions.get(id).token }, cache: "no-store" });
        if (r.ok) state.plansOf.set(id, (await r.json()).plan);
      } catch {
        /* the switcher keeps the workspace's name */
      }
    }),
  );
  renderSwitcher();
}

// ---------- chat ----------

function log(kind, text, meta) {
  const li = el("li", { class: `msg msg-${kind}` }, text, meta ? el("span", { class: "msg-meta", text: meta }) : null);
  const list = $("#chat-log");
  list.append(li);
  list.scrollTop = list.scrollHeight;
  return li;
}

const currentMode = () => $('input[name="mode"]:checked').value;

function fieldPreview(f) {
  const t = f.textContent.trim().replace(/\s+/g, " ");
  return t.length > 48 ? t.slice(0, 47) + "…" : t;
}

function setTarget(f) {
  if (state.target) state.target.classList.remove("is-target");
  state.target = f;
  f.classList.add("is-target");
  renderMode();
}

function renderMode() {
  const mode = currentMode();
  const t = $("#chat-target");
  const input = $("#chat-input");
  if (mode === "content_rewrite") {
    const f = state.target;
    t.replaceChildren("Rewriting ", el("b", { text: f.dataset.field }), `: “${fieldPreview(f)}”`);
    $("#chat-input-label").textContent = "How should I rewrite it?";
    input.placeholder = "make it friendlier";
  } else {
    t.replaceChildren("A new section is added to the page, below the hero.");
    $("#chat-input-label").textContent = "Describe the section";
    input.placeholder = "opening hours and how to order ahead";
  }
  $("#send-cost").textContent = "· " + (cost(mode) === 0 ? "Free" : fmt(cost(mode)));
  $("#chat-send").setAttribute("aria-label", `Send (${costLabel(mode)})`);
  updateLow();
}

function setBusy(on, ...buttons) {
  state.busy = on;
  for (const b of buttons) {
    b.disabled = on;
    b.setAttribute("aria-busy", String(on));
  }
}

async function onChatSubmit(ev) {
  ev.preventDefault();
  if (state.busy) return;
  const mode = currentMode();
  const input = $("#chat-input");
  const prompt = input.value.trim();
  const slot = $("#chat-alert");
  slot.replaceChildren();
  if (mode === "section_generation" && !prompt) {
    showAlert(slot, "err", "Describe the section first", "Say what the section is about, for example “opening hours and how to order ahead”.");
    input.focus();
    return;
  }
  const target = state.target;
  const body = mode === "content_rewrite" ? { prompt: prompt || "improve this text", text: target.textContent.trim() } : { prompt };
  const what = mode === "content_rewrite" ? `Rewrite ${target.dataset.field}: ${prompt || "improve this text"}` : `New section: ${prompt}`;
  log("user", what, costLabel(mode));
  const pending = log("ai", "Working…");
  const send = $("#chat-send");
  setBusy(true, send);
  try {
    const data = await api(wsPath(`/ai/${enc(mode)}`), { method: "POST", body, key: newKey() });
    $("#chat-alert").replaceChildren();
    scheduleUsage();
    const res = data.result;
    const label = res.provider === "demo" ? "demo output" : `by ${res.provider}`;
    if (mode === "content_rewrite") {
      target.textContent = res.text;
      target.classList.add("is-ai");
      pending.replaceChildren(`Rewrote ${target.dataset.field}.`, el("span", { class: "msg-meta", text: `−${fmt(data.charge.cost)} credit${data.charge.cost === 1 ? "" : "s"} · ${label}` }));
      renderMode();
    } else {
      const sec = addSection(res.text, res.provider);
      pending.replaceChildren(`Added “${sec}” to the page.`, el("span", { class: "msg-meta", text: `−${fmt(data.charge.cost)} credits · ${label}` }));
    }
    input.value = "";
  } catch (err) {
    pending.remove();
    showProblem(slot, err, mode, () => $("#chat-form").requestSubmit());
    log("err", problemSummary(err));
  } finally {
    setBusy(false, send);
  }
}

function addSection(text, provider) {
  let lines = text.split("\n");
  if (lines[0].trim().startsWith("[demo section]")) lines = lines.slice(1);
  lines = lines.map((l) => l.replace(/^#+\s*/, "").trim());
  while (lines.length && !lines[0]) lines.shift();
  const title = lines.shift() || "New section";
  const body = lines.join("\n").trim();
  const n = ++state.sections;
  const h = el("h3", { class: "field is-ai", contenteditable: "true", spellcheck: "false", "data-field": `Section ${n} title`, "aria-label": `Section ${n} title (editable text)`, text: title });
  const p = el("p", { class: "field is-ai", contenteditable: "true", spellcheck: "false", "data-field": `Section ${n} text`, "aria-label": `Section ${n} text (editable text)`, text: body });
  const sec = el("section", { class: "gen-section", "data-testid": "generated-section" }, el("span", { class: "demo-badge", text: provider === "demo" ? "Demo output" : "AI draft" }), h, p);
  $("#sections").append(sec);
  sec.scrollIntoView({ block: "nearest", behavior: "smooth" });
  return title;
}

// ---------- problems ----------

function showAlert(slot, kind, title, text, ...extra) {
  const close = el("button", { type: "button", class: "icon-btn alert-close", "aria-label": "Dismiss" });
  close.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>';
  close.addEventListener("click", () => {
    box.remove();
    const f = slot.closest("dialog") ? $("textarea", slot.closest("dialog")) : $("#chat-input");
    if (f) f.focus();
  });
  const box = el("div", { class: `alert alert-${kind}`, role: kind === "ok" ? "status" : "alert" }, close, el("strong", { text: title }), text ? el("p", { text }) : null, ...extra);
  slot.replaceChildren(box);
  return box;
}

function problemSummary(err) {
  switch (err.code) {
    case "insufficient_credits":
      return `Not enough credits: ${fmt(err.problem.balance)} available, ${fmt(err.problem.required)} required. Nothing was charged.`;
    case "operation_failed":
      return "The AI operation failed. Nothing was charged.";
    default:
      return err.network ? "Could not reach the server." : err.message;
  }
}

// showProblem explains a failed request in slot. retry runs it again
// (after an upgrade, say).
function showProblem(slot, err, op, retry) {
  const p = err.problem;
  if (err.code === "insufficient_credits") {
    const figures = el(
      "div",
      { class: "figures" },
      el("span", { class: "figure" }, el("b", { "data-testid": "short-balance", text: fmt(p.balance) }), el("span", { text: "credits available" })),
      el("span", { class: "figure" }, el("b", { "data-testid": "short-required", text: fmt(p.required) }), el("span", { text: "credits required" })),
    );
    const extra = [figures];
    if (p.upgrade) {
      const up = p.upgrade;
      extra.push(el("p", { text: `Upgrade to ${planName(up.plan)} for ${fmt(up.monthly_credits)} credits a month (${price({ ...state.plans.get(up.plan), ...up })}). In the demo the upgrade is free and takes effect at once.` }));
      const btn = el("button", { type: "button", class: "btn btn-upgrade", "data-testid": "upgrade-button", text: `Upgrade ${state.ws} to ${planName(up.plan)}` });
      btn.addEventListener("click", () => upgrade(slot, up.plan, btn, retry));
      extra.push(btn);
    } else {
      extra.push(el("p", { text: "This workspace is on the largest plan. Credits reset at the start of the next cycle." }));
    }
    const box = showAlert(slot, "warn", "Not enough credits", `Nothing was charged and nothing changed on the page. You need ${fmt(p.shortfall ?? p.required - p.balance)} more.`, ...extra);
    box.dataset.testid = "insufficient";
    return;
  }
  if (err.code === "operation_failed") {
    const box = showAlert(
      slot,
      "err",
      "The AI operation failed",
      "The provider could not finish it, so nothing was charged and nothing changed on the page. Your balance is unchanged. Try again, or change the prompt.",
    );
    box.dataset.testid = "operation-failed";
    return;
  }
  if (err.network) {
    showAlert(slot, "err", "Could not reach the server", "Check that credits serve is running, then try again. A retry is never charged twice.");
    return;
  }
  if (err.status === 401) {
    showAlert(slot, "err", "Your demo session expired", "Reload the page for a new one.");
    return;
  }
  if (err.status === 429) {
    showAlert(slot, "err", "Too many requests", "Wait a moment and try again.");
    return;
  }
  showAlert(slot, "err", (p && p.title) || "Something went wrong", p.detail || err.message);
}

async function upgrade(slot, plan, btn, retry) {
  btn.disabled = true;
  btn.textContent = "Upgrading…";
  try {
    const r = await fetch(`/demo/workspaces/${enc(state.ws)}/upgrade`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ plan }),
      cache: "no-store",
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new ApiError(r.status, data);
    state.plansOf.set(state.ws, data.workspace.plan);
    renderSwitcher();
    const from = state.plans.get(data.from);
    const to = state.plans.get(data.workspace.plan);
    const gained = from && to ? to.monthly_credits - from.monthly_credits : 0;
    const again = el("button", { type: "button", class: "btn btn-secondary btn-sm", "data-testid": "try-again", text: "Try again" });
    again.addEventListener("click", () => {
      slot.replaceChildren();
      retry && retry();
    });
    const box = showAlert(slot, "ok", `Upgraded to ${planName(data.workspace.plan)}`, gained > 0 ? `+${fmt(gained)} credits this cycle.` : "The new plan's credits are available now.", retry ? again : null);
    box.dataset.testid = "upgraded";
    log("ai", `Upgraded ${state.ws} from ${planName(data.from)} to ${planName(data.workspace.plan)}.`);
    (retry ? again : btn).focus();
  } catch (err) {
    showProblem(slot, err, "", retry);
  }
}

// ---------- image modal ----------

let lastImage = null;
let opener = null;

// openDialog shows d as a modal (focus trapped, Escape closes it) and gives
// the focus back to from when it closes: Firefox and Safari do not focus a
// clicked button, so document.activeElement may not be it.
function openDialog(d, focusSel, from) {
  opener = from || document.activeElement;
  d.showModal();
  if (focusSel) $(focusSel, d).focus();
}

function closeDialog(d) {
  if (d.open) d.close();
}

function setupDialog(d, closeBtn) {
  closeBtn.addEventListener("click", () => closeDialog(d));
  d.addEventListener("click", (ev) => {
    if (ev.target === d) closeDialog(d); // the backdrop
  });
  d.addEventListener("close", () => {
    if (opener && opener.isConnected) opener.focus();
  });
}

function renderSizes() {
  const box = $("#size-options");
  box.replaceChildren();
  const sizes = [
    ["image_1k", "1K", "1024 × 1024"],
    ["image_2k", "2K", "2048 × 2048"],
  ].filter(([id]) => state.ops.has(id));
  sizes.forEach(([id, label, px], i) => {
    const input = el("input", { type: "radio", name: "size", value: id, checked: i === 0 });
    input.addEventListener("change", renderImageButton);
    box.append(el("label", { class: "size" }, input, el("span", {}, el("b", { text: `${label} · ${px}` }), el("span", { "data-testid": `cost-${id}`, text: costLabel(id) }))));
  });
  renderImageButton();
}

const largestImage = () => (state.ops.has("image_2k") ? 2048 : 1024);

const currentSize = () => ($('input[name="size"]:checked') || { value: "image_1k" }).value;

function renderImageButton() {
  $("#image-generate").textContent = `Generate · ${costLabel(currentSize())}`;
}

async function onImageSubmit(ev) {
  ev.preventDefault();
  if (state.busy) return;
  const op = currentSize();
  const slot = $("#image-alert");
  const prompt = $("#image-prompt").value.trim();
  slot.replaceChildren();
  // No partial or stale result while a new one is asked for.
  $("#image-preview").hidden = true;
  $("#image-result").removeAttribute("src");
  lastImage = null;
  if (!prompt) {
    showAlert(slot, "err", "Describe the image first", "For example “warm sourdough loaves on a wooden counter”.");
    $("#image-prompt").focus();
    return;
  }
  const btn = $("#image-generate");
  setBusy(true, btn);
  btn.textContent = "Generating…";
  try {
    const data = await api(wsPath(`/ai/${enc(op)}`), { method: "POST", body: { prompt }, key: newKey() });
    const img = data.result.image;
    $("#chat-alert").replaceChildren();
    scheduleUsage();
    lastImage = { ...img, prompt, provider: data.result.provider, op };
    const tag = $("#image-result");
    tag.width = img.width;
    tag.height = img.height;
    // The largest size fills the frame; smaller ones keep their proportion
    // to it, so a 1K image looks half as wide as a 2K one.
    tag.style.width = `${Math.min(100, (img.width / largestImage()) * 100)}%`;
    const scale = el("span", { "data-testid": "image-scale" });
    tag.onload = () => {
      const shown = Math.min(tag.clientWidth, tag.clientHeight) / img.width;
      scale.textContent = shown > 0 && shown < 1 ? `, shown at ${Math.max(1, Math.round(shown * 100))}%` : "";
    };
    tag.src = `data:${img.mime_type};base64,${img.data_base64}`;
    tag.alt = `Generated image: ${prompt}`;
    $("#image-caption").replaceChildren(
      el("b", { "data-testid": "image-size", text: `${img.width} × ${img.height}` }),
      " px",
      scale,
      ` · ${fmt(data.charge.cost)} credits · ${data.result.provider === "demo" ? "demo output" : "by " + data.result.provider}`,
    );
    $("#image-preview").hidden = false;
    log("ai", `Generated a ${img.width}×${img.height} image.`, `−${fmt(data.charge.cost)} credits`);
  } catch (err) {
    showProblem(slot, err, op, () => $("#image-form").requestSubmit());
    log("err", problemSummary(err));
  } finally {
    setBusy(false, btn);
    renderImageButton();
  }
}

function useImage() {
  if (!lastImage) return;
  const img = $("#hero-img");
  img.src = `data:${lastImage.mime_type};base64,${lastImage.data_base64}`;
  img.alt = lastImage.prompt;
  img.width = lastImage.width;
  img.height = lastImage.height;
  img.hidden = false;
  $("#hero-empty").hidden = true;
  const cap = $("#hero-caption");
  cap.textContent = `${lastImage.width} × ${lastImage.height}${lastImage.provider === "demo" ? " · demo output" : ""}`;
  cap.hidden = false;
  $("#open-image").textContent = "Replace image…";
  closeDialog($("#image-dialog"));
}

// ---------- avatars ----------

let avatars = null;

async function openAvatars() {
  openDialog($("#avatar-dialog"), null, $("#open-avatar"));
  const grid = $("#avatar-grid");
  if (!avatars) {
    grid.replaceChildren(el("p", { class: "modal-sub", text: "Loading the library…" }));
    try {
      const r = await fetch("/demo/avatars");
      avatars = (await r.json()).avatars;
    } catch {
      showAlert($("#avatar-alert"), "err", "Could not load the avatar library", "Try again.");
      return;
    }
    grid.replaceChildren(
      ...avatars.map((a) =>
        el(
          "button",
          { type: "button", class: "avatar-btn", "data-avatar": a.id, "aria-pressed": "false", "aria-label": `${a.name}, ${costLabel("avatar_selection")}`, onclick: () => chooseAvatar(a) },
          el("img", { src: `data:${a.image.mime_type};base64,${a.image.data_base64}`, alt: "", width: 56, height: 56 }),
          a.name,
        ),
      ),
    );
  }
  const first = $(".avatar-btn[aria-pressed=true]", grid) || $(".avatar-btn", grid);
  if (first) first.focus();
}

async function chooseAvatar(a) {
  if (state.busy) return;
  const slot = $("#avatar-alert");
  slot.replaceChildren();
  state.busy = true;
  try {
    const data = await api(wsPath("/ai/avatar_selection"), { method: "POST", body: { text: a.id }, key: newKey() });
    scheduleUsage(); // a free operation may leave the balance, and so the stream, quiet
    const img = data.result.image;
    const tag = $("#team-avatar");
    tag.src = `data:${img.mime_type};base64,${img.data_base64}`;
    tag.alt = `Avatar: ${data.result.avatar.name}`;
    for (const b of $$(".avatar-btn")) b.setAttribute("aria-pressed", String(b.dataset.avatar === a.id));
    log("ai", `Avatar “${data.result.avatar.name}” chosen.`, data.charge.cost === 0 ? "Free · 0 credits" : `−${fmt(data.charge.cost)} credits`);
    closeDialog($("#avatar-dialog"));
  } catch (err) {
    showProblem(slot, err, "avatar_selection");
  } finally {
    state.busy = false;
  }
}

// ---------- usage: ledger and chart ----------

let usageTimer = 0;
let usageRunning = false;
let usageAgain = false;

function scheduleUsage() {
  clearTimeout(usageTimer);
  usageTimer = setTimeout(refreshUsage, 150);
}

async function refreshUsage() {
  if (usageRunning) {
    usageAgain = true;
    return;
  }
  usageRunning = true;
  try {
    do {
      usageAgain = false;
      const b = state.balance;
      if (!b) break;
      const ws = state.ws;
      const entries = await cycleEntries(b);
      if (ws !== state.ws) break;
      renderLedger(entries);
      renderChart(entries, b);
    } while (usageAgain);
  } catch (err) {
    $("#ledger-body").replaceChildren(el("tr", {}, el("td", { colspan: "4", text: "Could not load the ledger: " + err.message })));
  } finally {
    usageRunning = false;
  }
}

// cycleEntries reads the ledger, newest first, back to the cycle's start.
async function cycleEntries(b) {
  const start = Date.parse(b.cycle_start);
  const out = [];
  let cursor = "";
  for (let page = 0; page < 20; page++) {
    const q = `?limit=500${cursor ? "&cursor=" + enc(cursor) : ""}`;
    const data = await api(wsPath("/ledger" + q));
    let older = false;
    for (const e of data.entries) {
      if (Date.parse(e.at) < start) {
        older = true;
        break;
      }
      out.push(e);
    }
    if (older || !data.next_cursor) break;
    cursor = data.next_cursor;
  }
  return out;
}

function renderLedger(entries) {
  const body = $("#ledger-body");
  const shown = state.ledgerAll ? entries : entries.slice(0, 25);
  const when = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
  body.dataset.available = entries.length ? String(entries[0].available_after) : "";
  body.replaceChildren(
    ...shown.map((e) => {
      const amt = e.amount > 0 ? "+" + fmt(e.amount) : e.amount < 0 ? "−" + fmt(-e.amount) : "0";
      return el(
        "tr",
        {},
        el("td", { class: "when", text: when.format(new Date(e.at)) }),
        el("td", {}, TYPE_LABEL[e.type] || e.type, el("span", { class: "when-inline", text: when.format(new Date(e.at)) }), e.operation ? el("div", { class: "op", title: opName(e.operation), text: ONE[e.operation] || opName(e.operation) }) : e.reason ? el("div", { class: "op", text: e.reason }) : null),
        el("td", { class: "num " + (e.amount > 0 ? "pos" : e.amount < 0 ? "neg" : ""), text: amt }),
        el("td", { class: "num", text: fmt(e.available_after) }),
      );
    }),
  );
  if (!entries.length) body.append(el("tr", {}, el("td", { colspan: "4", text: "No entries in this cycle yet." })));
  const more = $("#ledger-more");
  more.hidden = entries.length <= 25;
  more.textContent = state.ledgerAll ? "Show the latest 25" : `Show all ${fmt(entries.length)} entries`;
}

const dayKey = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;

// usedPerDay sums captured charges per local day and operation.
function usedPerDay(entries) {
  const holds = new Map();
  for (const e of entries) if (e.type === "hold" && e.charge_id) holds.set(e.charge_id, e);
  const days = new Map();
  for (const e of entries) {
    if (e.type !== "capture") continue;
    const h = holds.get(e.charge_id);
    const amount = h ? -h.amount : 0;
    const op = e.operation || (h && h.operation) || "other";
    if (amount <= 0) continue;
    const k = dayKey(new Date(e.at));
    const m = days.get(k) || new Map();
    m.set(op, (m.get(op) || 0) + amount);
    days.set(k, m);
  }
  return days;
}

// niceStep is a round step for about four grid lines up to v.
function niceStep(v) {
  const raw = Math.max(v, 4) / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

let lastChart = null;
function renderChart(entries, b) {
  lastChart = [entries, b];
  const box = $("#chart");
  const legend = $("#legend");
  const perDay = usedPerDay(entries);
  const start = new Date(b.cycle_start);
  const end = new Date(b.cycle_end);
  const days = [];
  for (let d = new Date(start.getFullYear(), start.getMonth(), start.getDate()); d < end && days.length < 62; d.setDate(d.getDate() + 1)) days.push(new Date(d));
  const ops = state.catalog.operations.map((o) => o.id).filter((id) => cost(id) > 0);
  for (const m of perDay.values()) for (const op of m.keys()) if (!ops.includes(op)) ops.push(op);
  let max = 0;
  const totals = new Map();
  for (const [, m] of perDay) max = Math.max(max, [...m.values()].reduce((a, c) => a + c, 0));
  for (const m of perDay.values()) for (const [op, v] of m) totals.set(op, (totals.get(op) || 0) + v);
  const total = [...totals.values()].reduce((a, c) => a + c, 0);

  legend.replaceChildren(...ops.map((op) => el("li", {}, swatch(op), `${SHORT[op] || opName(op)}${totals.get(op) ? " · " + fmt(totals.get(op)) : ""}`)));
  if (!total) {
    box.replaceChildren(el("p", { class: "chart-empty", "data-testid": "chart-empty", text: "No credits used yet this cycle. Run an operation and it shows here." }));
    return;
  }
  const W = Math.max(280, Math.round(box.clientWidth || 640));
  const H = W < 480 ? 180 : 220;
  const L = 34;
  const R = 6;
  const T = 10;
  const B = 24;
  const pw = W - L - R;
  const ph = H - T - B;
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const slot = pw / days.length;
  const bw = Math.max(3, Math.min(22, slot * 0.68));
  const y = (v) => T + ph - (v / top) * ph;
  const summary = `${fmt(total)} credits used this cycle: ` + ops.filter((o) => totals.get(o)).map((o) => `${fmt(totals.get(o))} on ${opName(o).toLowerCase()}`).join(", ") + ".";
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-labelledby": "chart-title chart-desc" });
  root.append(svg("desc", { id: "chart-desc" }, summary));
  for (let i = 0; i * step <= top; i++) {
    const v = i * step;
    root.append(svg("line", { class: i ? "grid" : "axis", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    root.append(svg("text", { x: L - 6, y: y(v) + 3, "text-anchor": "end" }, fmt(Math.round(v))));
  }
  const today = dayKey(new Date());
  const every = Math.ceil(days.length / Math.max(3, Math.floor(pw / 70)));
  days.forEach((d, i) => {
    const k = dayKey(d);
    const x = L + i * slot + (slot - bw) / 2;
    if (k === today) root.append(svg("rect", { class: "today", x: L + i * slot, y: T, width: slot, height: ph }));
    const m = perDay.get(k);
    let acc = 0;
    if (m) {
      for (const op of ops) {
        const v = m.get(op);
        if (!v) continue;
        const r = svg("rect", { x, y: y(acc + v), width: bw, height: Math.max(1, y(acc) - y(acc + v)), fill: opColor(op), rx: 1.5 });
        r.append(svg("title", {}, `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} · ${opName(op)}: ${fmt(v)} credits`));
        root.append(r);
        acc += v;
      }
    }
    if (i % every === 0 || k === today) {
      root.append(svg("text", { x: L + i * slot + slot / 2, y: H - 8, "text-anchor": "middle" }, d.toLocaleDateString(undefined, { month: "short", day: "numeric" })));
    }
  });
  box.replaceChildren(root);
}

function swatch(op) {
  const s = el("span", { class: "swatch", "aria-hidden": "true" });
  s.style.background = opColor(op);
  return s;
}

// ---------- estimator ----------

function renderEstimator() {
  const box = $("#estimate-fields");
  box.replaceChildren(
    ...state.catalog.operations.map((o) => {
      const input = el("input", { type: "number", min: "0", max: "1000000", step: "1", inputmode: "numeric", name: o.id, placeholder: String(EXAMPLE[o.id] ?? 0) });
      input.addEventListener("input", () => {
        clearTimeout(estimateTimer);
        estimateTimer = setTimeout(estimate, 350);
      });
      return el("label", {}, el("span", { class: "est-name" }, el("b", { text: SHORT[o.id] || o.name }), " · ", costLabel(o.id), o.cost ? " each" : ""), input);
    }),
  );
}

let estimateTimer = 0;
async function estimate(ev) {
  if (ev) ev.preventDefault();
  const inputs = $$("#estimate-fields input");
  const typed = inputs.some((i) => i.value.trim() !== "");
  const items = inputs.map((i) => ({ operation: i.name, count: typed ? Math.max(0, Math.floor(Number(i.value) || 0)) : Number(i.placeholder) || 0 }));
  const out = $("#estimate-result");
  try {
    const r = await api("/v1/estimate", { method: "POST", body: { items }, auth: false });
    const best = r.smallest_plan;
    const bp = best && state.plans.get(best);
    out.replaceChildren(
      el("div", { class: "estimator-hint", text: typed ? "Your work, per month:" : "The example (10 sections, 15 rewrites, 3 images at 1K), per month:" }),
      el("div", { class: "estimate-total", "data-testid": "estimate-total" }, `${fmt(r.total)} credits`),
      el(
        "p",
        { class: "estimate-answer", "data-testid": "estimate-answer" },
        best ? [el("b", { text: planName(best) }), ` fits: ${fmt(bp.monthly_credits)} credits a month, ${price(bp)}.`] : `No plan fits: the largest gives ${fmt(r.plans.at(-1).monthly_credits)} credits a month.`,
      ),
      el(
        "ul",
        { class: "plan-fits" },
        r.plans.map((p) =>
          el(
            "li",
            { class: p.id === best ? "best" : "" },
            el("span", {}, el("b", { text: planName(p.id) }), ` · ${fmt(p.monthly_credits)} credits`),
            el("span", { class: p.fits ? "" : "no", text: p.fits ? (p.id === best ? "fits · smallest" : "fits") : "too small" }),
          ),
        ),
      ),
    );
  } catch (err) {
    out.replaceChildren(el("p", { class: "estimator-hint", text: "Could not estimate: " + err.message }));
  }
}

// ---------- start ----------

async function start() {
  const list = JSON.parse($("#demo-sessions").textContent || "[]");
  for (const s of list) {
    state.sessions.set(s.workspace_id, s);
    state.order.push(s.workspace_id);
  }
  const cat = await fetch("/v1/catalog").then((r) => r.json());
  state.catalog = cat;
  for (const o of cat.operations) state.ops.set(o.id, o);
  for (const p of cat.plans) state.plans.set(p.id, p);
  for (const e of $$("[data-cost-label]")) e.textContent = costLabel(e.dataset.costLabel);

  const fields = $$("#canvas .field");
  document.getElementById("canvas").addEventListener("focusin", (ev) => {
    if (ev.target.classList && ev.target.classList.contains("field")) setTarget(ev.target);
  });
  document.getElementById("canvas").addEventListener("input", (ev) => {
    if (ev.target === state.target) renderMode();
  });
  state.target = fields[0];
  state.target.classList.add("is-target");
  for (const r of $$('input[name="mode"]')) r.addEventListener("change", renderMode);
  renderMode();

  $("#chat-form").addEventListener("submit", onChatSubmit);
  $("#chat-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("#chat-form").requestSubmit();
    }
  });

  const imageDialog = $("#image-dialog");
  setupDialog(imageDialog, $("#image-close"));
  $("#open-image").addEventListener("click", (ev) => openDialog(imageDialog, "#image-prompt", ev.currentTarget));
  $("#image-form").addEventListener("submit", onImageSubmit);
  $("#image-use").addEventListener("click", useImage);
  renderSizes();

  const avatarDialog = $("#avatar-dialog");
  setupDialog(avatarDialog, $("#avatar-close"));
  $("#open-avatar").addEventListener("click", openAvatars);

  $("#ledger-more").addEventListener("click", () => {
    state.ledgerAll = !state.ledgerAll;
    refreshUsage();
  });
  let chartWidth = 0;
  new ResizeObserver(() => {
    const w = $("#chart").clientWidth;
    if (lastChart && Math.abs(w - chartWidth) > 8) renderChart(...lastChart);
    chartWidth = w;
  }).observe($("#chart"));
  renderEstimator();
  $("#estimate-form").addEventListener("submit", estimate);
  estimate();

  const want = location.hash.slice(1);
  renderSwitcher();
  switchTo(state.sessions.has(want) ? want : state.order[0], { quiet: true });
  window.addEventListener("hashchange", () => switchTo(location.hash.slice(1)));
  loadPlans();
  document.body.dataset.ready = "true";
}

start().catch((err) => {
  document.body.dataset.ready = "error";
  showAlert($("#chat-alert"), "err", "The demo could not start", err.message);
});
