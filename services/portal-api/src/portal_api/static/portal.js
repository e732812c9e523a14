// mPort portal: collapsible rows, the confirm dialog, placing orders, and live order and SMS status (SSE).
"use strict";

(function () {
  const RANK = { received: 0, submitted: 1, completed: 2, failed: 2 };
  const LIVE_RETRY_MS = 30000;
  const lang = document.documentElement.lang === "en" ? "en" : "nb";
  const strings = JSON.parse((document.getElementById("i18n") || {}).textContent || "{}");
  const box = document.getElementById("self-service");
  const ordersTable = document.querySelector("[data-live-orders]");
  const dialog = document.getElementById("order-dialog");
  // Bekreft telefonnummer, while a code is open: how far its SMS got, live.
  const verify = document.querySelector("[data-verification-id]");

  // What this page knows of each order: id -> an update as the event stream sends it
  // ({order_id, status, product_code, failure_reason, failure_code, carrier_state, expected_completion_at}).
  const orders = new Map();
  // What the employee typed for an order (the new SIM's ICC), to show once it completes.
  const placedDetails = new Map();

  function t(key, values) {
    let text = strings[key] || key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) return meta.content;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // Plain http on a LAN address is not a secure context, where randomUUID is missing.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function formatKr(ore) {
    const sign = ore < 0 ? "-" : "";
    const abs = Math.abs(ore);
    const kroner = Math.floor(abs / 100);
    const rest = String(abs % 100).padStart(2, "0");
    if (lang === "nb") {
      return `${sign}${String(kroner).replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0")},${rest} kr`;
    }
    return `NOK ${sign}${kroner.toLocaleString("en-GB")}.${rest}`;
  }

  // As the server writes it: "25.11.2026 13:08", Norwegian time wherever the browser is.
  const dateParts = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/Oslo", day: "2-digit", month: "2-digit", year: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  function formatDate(iso) {
    const part = Object.fromEntries(dateParts.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return `${part.day}.${part.month}.${part.year} ${part.hour}:${part.minute}`;
  }
  function formatDay(iso) {
    return formatDate(iso).split(" ")[0];
  }

  // An order as the API returns it, as an update like those the event stream sends.
  function updateOf(order) {
    return {
      order_id: order.id, status: order.status, product_code: order.product_code, action: order.action || "add",
      failure_reason: order.failure_reason, failure_code: order.failure_code,
      carrier_state: order.carrier_state, expected_completion_at: order.expected_completion_at,
    };
  }

  // Why an order failed, in words: ours when the carrier ran out of time, else the carrier's reason.
  function failureText(update) {
    const key = `failure.${update.failure_code}`;
    if (update.failure_code && update.failure_code !== "carrier_rejected" && strings[key]) return t(key);
    return update.failure_reason || "";
  }

  function expectedDay(update) {
    return update.status === "submitted" && update.expected_completion_at
      ? formatDay(update.expected_completion_at) : null;
  }

  function sameProgress(a, b) {
    const time = (iso) => (iso ? new Date(iso).getTime() : null);
    return (a.carrier_state || null) === (b.carrier_state || null)
      && time(a.expected_completion_at) === time(b.expected_completion_at);
  }

  let toastTimer = null;
  function toast(text, failed) {
    const region = document.getElementById("live-status");
    if (!region) return;
    region.textContent = text;
    region.classList.toggle("failed", Boolean(failed));
    region.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { region.hidden = true; }, failed ? 10000 : 6000);
  }

  // ---- Collapsible rows: real buttons, so Enter and Space work as they should ----------------
  document.addEventListener("click", (event) => {
    const toggle = event.target.closest(".ss-toggle");
    if (!toggle) return;
    const expanded = toggle.getAttribute("aria-expanded") === "true";
    toggle.setAttribute("aria-expanded", String(!expanded));
    const panel = document.getElementById(toggle.getAttribute("aria-controls"));
    if (panel) panel.hidden = expanded;
  });

  // ---- Products and their buttons ----------------------------------------------------------
  function productElements(code) {
    return document.querySelectorAll(`[data-orderable][data-product="${CSS.escape(code)}"]`);
  }

  // `options.label` overrides the button's text; `options.info` marks the message as news, not an error.
  function setState(el, state, message, options) {
    const { label, info } = options || {};
    el.dataset.state = state;
    const button = el.querySelector("[data-action=order]");
    if (button) {
      button.className = button.className.replace(/\bstate-\S+/g, "").trim() + ` state-${state}`;
      button.disabled = state !== "available";
      button.textContent = label
        || (state === "placing" || state === "pending" ? t("button.ordering")
          : state === "active" ? t("button.ordered")
          : button.dataset.label);
    }
    const note = el.querySelector("[data-role=message]");
    if (note) {
      note.textContent = message || "";
      note.hidden = !message;
      note.classList.toggle("info", Boolean(message && info));
    }
  }

  // An open order: "Bestiller …" while we hold it, "Under behandling hos operatøren" once the
  // carrier has it, with the date it expects to be done when it has said.
  function setPending(el, update) {
    const withCarrier = update.status === "submitted";
    const day = expectedDay(update);
    setState(el, "pending", day ? t("product.expected", { date: day }) : "", {
      label: withCarrier ? t("button.with_carrier") : null, info: true,
    });
  }

  function markActiveService(el) {
    const list = document.querySelector("[data-role=active-services]");
    if (!list || list.querySelector(`li[data-product="${CSS.escape(el.dataset.product)}"]`)) return;
    const empty = list.querySelector("[data-role=empty]");
    if (empty) empty.remove();
    const item = document.createElement("li");
    item.dataset.product = el.dataset.product;
    item.textContent = el.dataset.name;
    list.appendChild(item);
  }

  function switchPlan(el) {
    for (const plan of document.querySelectorAll("[data-orderable][data-kind=plan]")) {
      const marker = plan.querySelector("[data-role=current-marker]");
      const isNew = plan === el;
      if (marker) marker.hidden = !isNew;
      if (isNew) setState(plan, "active");
      else if (plan.dataset.state === "active") setState(plan, "available");
    }
    for (const name of document.querySelectorAll("[data-role=plan-name]")) name.textContent = el.dataset.name;
    const pays = document.querySelector("[data-role=plan-pays]");
    if (pays) pays.textContent = el.dataset.youPay;
  }

  function simCompleted(el, orderId) {
    if (el.dataset.kind === "sim_activation") {
      const icc = (placedDetails.get(orderId) || {}).icc;
      const shown = document.querySelector("[data-role=main-sim-icc]");
      if (icc && shown) shown.textContent = icc;
    } else {
      const list = document.querySelector("[data-role=sim-list]");
      if (!list) return;
      const item = document.createElement("li");
      item.className = "sim";
      const label = document.createElement("span");
      label.className = "sim-label";
      label.textContent = t("sim.label.Nytt SIM (sendt)");
      const status = document.createElement("span");
      status.className = "sim-icc muted";
      status.textContent = t("sim.status.ordered");
      item.append(label, status);
      list.appendChild(item);
    }
  }

  function applyToProduct(update) {
    for (const el of productElements(update.product_code)) {
      const current = el.dataset.orderId;
      // The employee is placing this product right now: the answer to that POST decides.
      if (!current && el.dataset.state === "placing") continue;
      if (current && current !== update.order_id) {
        const known = orders.get(current);
        if (known && RANK[known.status] < 2) continue; // another order of this product is still open
      }
      el.dataset.orderId = update.order_id;
      const name = el.dataset.name;
      if (update.status === "received") {
        setPending(el, update);
      } else if (update.status === "submitted") {
        setPending(el, update);
        const day = expectedDay(update);
        toast(day ? t("order.with_carrier_expected", { name, date: day }) : t("order.with_carrier", { name }));
      } else if (update.status === "completed") {
        if (el.dataset.kind === "addon") {
          setState(el, "active");
          markActiveService(el);
        } else if (el.dataset.kind === "plan") {
          switchPlan(el);
        } else {
          setState(el, "available");
          simCompleted(el, update.order_id);
        }
        toast(t("order.completed", { name }));
      } else if (update.status === "failed") {
        const reason = failureText(update);
        setState(el, "available", t("order.failed_short", { reason }));
        toast(t("order.failed", { name, reason }), true);
      }
    }
  }

  // ---- Mine bestillinger -------------------------------------------------------------------
  function renderOrderStatus(row, update) {
    row.dataset.status = update.status;
    const status = row.querySelector("[data-role=status]");
    status.textContent = t(`status.${update.status}`);
    status.className = `status status-${update.status}`;
    const expected = row.querySelector("[data-role=expected]");
    const day = expectedDay(update);
    expected.textContent = day ? t("order.expected", { date: day }) : "";
    expected.hidden = !day;
    const reason = row.querySelector("[data-role=reason]");
    const why = update.status === "failed" ? failureText(update) : "";
    reason.textContent = why;
    reason.hidden = !why;
  }

  const inserting = new Set();

  async function insertOrderRow(orderId) {
    // Later events for this order wait in `orders`; the row shows the newest once it is in.
    if (inserting.has(orderId)) return;
    inserting.add(orderId);
    try {
      const response = await fetch(`/api/v1/orders/${encodeURIComponent(orderId)}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (response.ok) addOrderRow(await response.json());
    } finally {
      inserting.delete(orderId);
    }
  }

  function addOrderRow(order) {
    if (ordersTable.querySelector(`tr[data-order-id="${CSS.escape(order.id)}"]`)) return;
    const row = document.createElement("tr");
    row.dataset.orderId = order.id;
    row.dataset.productCode = order.product_code;
    const date = document.createElement("td");
    date.textContent = formatDate(order.created_at);
    const product = document.createElement("th");
    product.scope = "row";
    product.textContent = order.action === "delete" ? t("orders.ending", { name: order.product_name }) : order.product_name;
    const state = document.createElement("td");
    state.innerHTML = '<span data-role="status"></span> <span class="expected" data-role="expected" hidden></span>'
      + ' <span class="failure-reason" data-role="reason" hidden></span>';
    const charge = document.createElement("td");
    charge.className = "amount";
    const amount = order.employee_charge_ore ? formatKr(order.employee_charge_ore) : null;
    charge.textContent = !amount ? t("orders.none")
      : order.billing === "monthly" ? t("charge.per_month", { amount }) : amount;
    row.append(date, product, state, charge);
    // The database may be behind the stream: show whichever is further along.
    const fetched = updateOf(order);
    const known = orders.get(order.id);
    const newest = known && RANK[known.status] >= RANK[fetched.status] ? known : fetched;
    orders.set(order.id, newest);
    renderOrderStatus(row, newest);
    ordersTable.querySelector("tbody").prepend(row);
    ordersTable.querySelector("table").hidden = false;
    ordersTable.querySelector("[data-role=empty]").hidden = true;
  }

  function applyToOrdersTable(update) {
    if (!ordersTable) return;
    const row = ordersTable.querySelector(`tr[data-order-id="${CSS.escape(update.order_id)}"]`);
    if (row) renderOrderStatus(row, update);
    // A page of older orders shows no new ones: they belong on the first page.
    else if (!ordersTable.hasAttribute("data-older-page")) insertOrderRow(update.order_id).catch(() => {});
  }

  // ---- One status change, from the stream or from a look-up --------------------------------
  function applyUpdate(update) {
    const known = orders.get(update.order_id);
    // Events may come late or twice; a status never moves backwards. While the carrier has the
    // order, its news (a new state, a new expected date) is shown without a change of status.
    if (known && RANK[update.status] < RANK[known.status]) return;
    if (known && update.status === known.status
      && (update.status !== "submitted" || sameProgress(known, update))) return;
    orders.set(update.order_id, update);
    if (update.action === "delete") applyToEnding(update);
    else applyToProduct(update);
    applyToOrdersTable(update);
  }

  async function reconcile() {
    // Whatever happened while the stream was down: ask for each order still open.
    for (const [id, known] of orders) {
      if (RANK[known.status] >= 2) continue;
      try {
        const response = await fetch(`/api/v1/orders/${encodeURIComponent(id)}`, {
          headers: { Accept: "application/json" }, credentials: "same-origin",
        });
        if (!response.ok) continue;
        applyUpdate(updateOf(await response.json()));
      } catch (_) { /* the stream will bring it */ }
    }
  }

  // ---- Bekreft telefonnummer: the SMS's progress ------------------------------------------------
  const DELIVERY_RANK = { requested: 0, sent: 1, delivered: 2, failed: 2 };

  function applyVerification(update) {
    if (!verify || update.verification_id !== verify.dataset.verificationId) return;
    const known = verify.dataset.delivery || "requested";
    // Reports may come late or twice; delivered and failed are both final.
    if (DELIVERY_RANK[update.delivery_status] === undefined) return;
    if (DELIVERY_RANK[update.delivery_status] <= DELIVERY_RANK[known]) return;
    verify.dataset.delivery = update.delivery_status;
    const line = verify.querySelector("[data-role=delivery]");
    if (!line) return;
    const failed = update.delivery_status === "failed";
    if (failed) {
      const why = t(`verify.failed.${update.delivery_reason_code || "undelivered"}`);
      line.textContent = `${t("verify.delivery.failed", { reason: why })} ${t("verify.failed.ask_again")}`;
    } else {
      line.textContent = t(`verify.delivery.${update.delivery_status}`);
    }
    line.classList.toggle("failed", failed);
  }

  async function reconcileVerification() {
    if (!verify) return;
    try {
      const response = await fetch(`/api/v1/verifications/${encodeURIComponent(verify.dataset.verificationId)}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) return;
      const state = await response.json();
      applyVerification({
        verification_id: state.id, delivery_status: state.delivery_status,
        delivery_reason: state.delivery_reason, delivery_reason_code: state.delivery_reason_code,
      });
    } catch (_) { /* the stream will bring it */ }
  }

  // ---- Mine lønnstrekk: a new line shows once the portal has recorded it -------------------
  const deductionsPage = document.querySelector("[data-live-deductions]");

  async function applyDeduction(update) {
    if (!deductionsPage || !update || !update.line_id) return;
    const id = String(update.line_id);
    if ([...deductionsPage.querySelectorAll("[data-line-id]")].some((row) => row.dataset.lineId === id)) return;
    // The event can come before the portal's own copy is committed: ask until it is there.
    for (let attempt = 0; attempt < 10; attempt += 1) {
      try {
        const response = await fetch("/api/v1/deductions", {
          headers: { Accept: "application/json" }, credentials: "same-origin",
        });
        if (response.ok) {
          const body = await response.json();
          if (body.periods.some((period) => period.lines.some((line) => line.id === id))) {
            window.location.reload();
            return;
          }
        }
      } catch (_) { /* try again */ }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  function connectLive() {
    if (!box && !ordersTable && !verify && !deductionsPage) return;
    if (!window.EventSource) return;
    const source = new EventSource("/api/v1/events");
    source.addEventListener("ready", () => {
      document.documentElement.dataset.live = "ready";
      reconcile();
      reconcileVerification();
    });
    source.addEventListener("verification", (event) => {
      try { applyVerification(JSON.parse(event.data)); } catch (_) { /* a malformed event is skipped */ }
    });
    source.addEventListener("order", (event) => {
      try { applyUpdate(JSON.parse(event.data)); } catch (_) { /* a malformed event is skipped */ }
    });
    source.addEventListener("deduction", (event) => {
      try { applyDeduction(JSON.parse(event.data)); } catch (_) { /* a malformed event is skipped */ }
    });
    source.addEventListener("error", () => {
      document.documentElement.dataset.live = "reconnecting";
      // The browser reconnects by itself after a network error, but not after a refusal (e.g. 429:
      // too many of this employee's pages are open): try again later, and catch up then.
      if (source.readyState === EventSource.CLOSED) setTimeout(connectLive, LIVE_RETRY_MS);
    });
  }

  // ---- The confirm dialog ("Produkt", "Legges til følgende msisdn", Ok / Kanseller) ---------
  let current = null; // {el, key, inFlight}

  function dialogPart(role) { return dialog.querySelector(`[data-role=${role}]`); }

  function showFieldError(name, message) {
    const field = dialog.querySelector(`[name=${name}]`);
    const error = dialog.querySelector(`[data-error-for=${name}]`);
    if (field) field.setAttribute("aria-invalid", message ? "true" : "false");
    if (error) { error.textContent = message || ""; error.hidden = !message; }
  }

  function luhnValid(digits) {
    let total = 0;
    for (let i = 0; i < digits.length; i++) {
      let d = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      total += d;
    }
    return total % 10 === 0;
  }

  function iccProblem(value) {
    const digits = value.replace(/\s+/g, "");
    if (!/^\d{19,20}$/.test(digits)) return t("sim.icc.length");
    if (!luhnValid(digits)) return t("sim.icc.check");
    return null;
  }

  function collectDetails(kind) {
    const value = (name) => dialog.querySelector(`[name=${name}]`).value.trim();
    if (kind === "sim_activation") {
      const problem = iccProblem(value("icc"));
      showFieldError("icc", problem);
      if (problem) { dialog.querySelector("[name=icc]").focus(); return null; }
      return { icc: value("icc").replace(/\s+/g, "") };
    }
    if (kind === "sim_order") {
      const details = { delivery_name: value("delivery_name"), delivery_address: value("delivery_address") };
      let ok = true;
      for (const name of ["delivery_address", "delivery_name"]) {
        const missing = !details[name];
        showFieldError(name, missing ? t("sim.required") : null);
        if (missing) { dialog.querySelector(`[name=${name}]`).focus(); ok = false; }
      }
      return ok ? details : null;
    }
    return {};
  }

  // Refusals are told apart by their problem `type` (https://mport.no/problems/<slug>, listed at
  // /problems), never by `title` or `detail`, which are words for people and may change.
  const PROBLEM_BASE = "https://mport.no/problems/";
  const PROBLEM_MESSAGES = new Map([
    ["invalid-icc", "problem.invalid_icc"],
    ["already-ordered", "problem.already"],
    ["already-active", "problem.already"],
    ["not-allowed-by-policy", "problem.policy"],
    ["deduction-changed", "problem.deduction_changed"],
    ["service-already-ending", "problem.already"],
    ["self-service-not-activated", "problem.self_service"],
    ["not-signed-in", "problem.session"],
    ["csrf-failed", "problem.session"],
  ]);

  function problemKind(problem) {
    const type = typeof problem.type === "string" ? problem.type : "";
    return type.startsWith(PROBLEM_BASE) ? type.slice(PROBLEM_BASE.length) : null;
  }

  function problemMessage(status, problem) {
    const key = PROBLEM_MESSAGES.get(problemKind(problem));
    if (key) return t(key);
    if (status === 401) return t("problem.session"); // e.g. a proxy's, without our type
    // Any 429 (too many orders, a proxy's): how long to wait is what the employee needs to know.
    if (status === 429) return t("problem.rate_limited", { seconds: problem.retry_after_s || 60 });
    if (problemKind(problem) === "pipeline-busy") return t("problem.busy", { seconds: problem.retry_after_s || 10 });
    return t("problem.generic", { detail: problem.detail || status });
  }

  function openDialog(el) {
    current = { el, key: newKey(), inFlight: false };
    const kind = el.dataset.kind;
    dialogPart("dialog-product").textContent = el.dataset.carrier;
    dialogPart("dialog-msisdn").textContent = box.dataset.msisdn;
    const deduction = dialogPart("dialog-deduction");
    deduction.textContent = el.dataset.deduction ? t("dialog.deduction", { amount: el.dataset.deduction }) : "";
    deduction.hidden = !el.dataset.deduction;
    dialogPart("dialog-note").hidden = el.dataset.norwayOnly !== "true";
    dialogPart("dialog-error").hidden = true;
    for (const fields of dialog.querySelectorAll("[data-fields]")) fields.hidden = fields.dataset.fields !== kind;
    for (const name of ["icc", "delivery_name", "delivery_address"]) showFieldError(name, null);
    dialog.querySelector("[name=icc]").value = "";
    setDialogBusy(false);
    dialog.showModal();
  }

  function setDialogBusy(busy) {
    const ok = dialog.querySelector("[data-action=confirm]");
    ok.disabled = busy;
    ok.textContent = busy ? t("button.ordering") : t("dialog.ok");
    ok.setAttribute("aria-busy", String(busy));
    dialog.querySelector("[data-action=cancel]").disabled = busy;
  }

  function closeDialog() {
    if (current && current.inFlight) return;
    current = null;
    dialog.close();
  }

  async function placeOrder() {
    if (!current || current.inFlight) return; // a second click while the first is on its way
    const { el, key } = current;
    const details = collectDetails(el.dataset.kind);
    if (details === null) return;
    const attempt = current;
    attempt.inFlight = true;
    setDialogBusy(true);
    const before = el.dataset.state;
    setState(el, "placing");
    let order = null;
    try {
      const response = await fetch("/api/v1/orders", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "Idempotency-Key": key, // one per dialog opening: a retry or double click is one order
          "X-CSRF-Token": csrfToken(),
        },
        body: JSON.stringify(orderBody(el, details)),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 202) {
        order = body;
      } else {
        showDialogError(problemMessage(response.status, body), body);
      }
    } catch (_) {
      showDialogError(t("problem.network"), {});
    } finally {
      attempt.inFlight = false;
    }
    if (order === null) {
      setState(el, before === "placing" ? "available" : before);
      setDialogBusy(false);
      return;
    }
    if (details.icc) placedDetails.set(order.id, details);
    el.dataset.orderId = order.id;
    setState(el, "pending");
    closeDialog();
    toast(t("order.received", { name: el.dataset.name }));
    // The stream may have been quicker than this answer.
    const known = orders.get(order.id);
    orders.delete(order.id);
    applyUpdate(updateOf(order));
    if (known) applyUpdate(known);
  }

  // Pressing Ok accepts the deduction the dialog states, in its very words (arbeidsmiljøloven
  // § 14-15): the portal records them with the order, and refuses if the amount is no longer so.
  function orderBody(el, details) {
    const body = { product_code: el.dataset.product, details };
    const amount = Number(el.dataset.deductionOre || "0");
    if (amount > 0) body.accept_deduction = { amount_ore: amount, text: dialogPart("dialog-deduction").textContent };
    return body;
  }

  // ---- Avslutt: ending a monthly add-on, after a confirmation ---------------------------------
  const endDialog = document.getElementById("end-dialog");
  let ending = null; // {button, key, inFlight}

  function endButton(productCode) {
    return document.querySelector(`[data-action=end][data-product="${CSS.escape(productCode)}"]`);
  }

  function openEndDialog(button) {
    ending = { button, key: newKey(), inFlight: false };
    endDialog.querySelector("[data-role=end-question]").textContent = t("end.question", { name: button.dataset.name });
    endDialog.querySelector("[data-role=end-error]").hidden = true;
    endDialog.querySelector("[data-action=confirm-end]").disabled = false;
    endDialog.showModal();
  }

  async function endService() {
    if (!ending || ending.inFlight) return;
    const attempt = ending;
    attempt.inFlight = true;
    const ok = endDialog.querySelector("[data-action=confirm-end]");
    ok.disabled = true;
    let order = null;
    let message = null;
    try {
      const response = await fetch("/api/v1/orders", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "Idempotency-Key": attempt.key,
          "X-CSRF-Token": csrfToken(),
        },
        body: JSON.stringify({ product_code: attempt.button.dataset.product, action: "delete" }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 202) order = body;
      else message = problemMessage(response.status, body);
    } catch (_) {
      message = t("problem.network");
    } finally {
      attempt.inFlight = false;
    }
    if (order === null) {
      const error = endDialog.querySelector("[data-role=end-error]");
      error.textContent = message;
      error.hidden = false;
      ok.disabled = false;
      return;
    }
    const button = attempt.button;
    button.dataset.orderId = order.id;
    button.disabled = true;
    button.textContent = t("end.ending");
    ending = null;
    endDialog.close();
    toast(t("end.received", { name: button.dataset.name }));
    const known = orders.get(order.id);
    orders.delete(order.id);
    applyUpdate(updateOf(order));
    if (known) applyUpdate(known);
  }

  function applyToEnding(update) {
    const button = endButton(update.product_code);
    const name = button ? button.dataset.name : update.product_code;
    if (update.status === "completed") {
      const item = button ? button.closest("li") : null;
      const list = item ? item.parentElement : null;
      if (item) item.remove();
      if (list && !list.querySelector("li")) {
        const empty = document.createElement("li");
        empty.className = "muted";
        empty.dataset.role = "empty";
        empty.textContent = list.dataset.emptyText;
        list.appendChild(empty);
      }
      for (const el of productElements(update.product_code)) setState(el, "available");
      toast(t("end.completed", { name }));
    } else if (update.status === "failed" && button) {
      button.disabled = false;
      button.textContent = t("end.button");
      toast(t("end.failed", { name, reason: failureText(update) }));
    }
  }

  if (endDialog) {
    document.addEventListener("click", (event) => {
      const button = event.target.closest("[data-action=end]");
      if (!button || button.disabled) return;
      openEndDialog(button);
    });
    endDialog.querySelector("[data-role=end-form]").addEventListener("submit", (event) => {
      event.preventDefault();
      endService();
    });
    endDialog.querySelector("[data-action=cancel-end]").addEventListener("click", () => {
      if (ending && ending.inFlight) return;
      ending = null;
      endDialog.close();
    });
    for (const button of document.querySelectorAll("[data-action=end][data-order-id]")) {
      orders.set(button.dataset.orderId, { order_id: button.dataset.orderId, status: "received",
        product_code: button.dataset.product, action: "delete" });
    }
  }

  function showDialogError(message, problem) {
    const error = dialogPart("dialog-error");
    error.textContent = message;
    error.hidden = false;
    if (problemKind(problem) === "invalid-icc") showFieldError("icc", message);
  }

  if (box && dialog) {
    box.addEventListener("click", (event) => {
      const button = event.target.closest("[data-action=order]");
      if (!button || button.disabled) return;
      openDialog(button.closest("[data-orderable]"));
    });
    dialog.querySelector("[data-role=dialog-form]").addEventListener("submit", (event) => {
      event.preventDefault();
      placeOrder();
    });
    dialog.querySelector("[data-action=cancel]").addEventListener("click", closeDialog);
    dialog.addEventListener("cancel", (event) => {
      // Escape closes the dialog like Kanseller, but not while an order is on its way.
      if (current && current.inFlight) event.preventDefault();
      else current = null;
    });
  }

  // Orders the server already had open when the page was made: follow them.
  for (const el of document.querySelectorAll("[data-orderable][data-order-id]")) {
    orders.set(el.dataset.orderId, { order_id: el.dataset.orderId, status: el.dataset.orderStatus || "received",
      product_code: el.dataset.product, carrier_state: el.dataset.carrierState || null,
      expected_completion_at: el.dataset.expectedCompletionAt || null });
  }
  if (ordersTable) {
    for (const row of ordersTable.querySelectorAll("tr[data-order-id]")) {
      orders.set(row.dataset.orderId, { order_id: row.dataset.orderId, status: row.dataset.status,
        product_code: row.dataset.productCode, carrier_state: row.dataset.carrierState || null,
        expected_completion_at: row.dataset.expectedCompletionAt || null });
    }
  }
  connectLive();
})();
