"use strict";
// The presence board: every Service user and whether they take tickets now, kept up to date
// by the change stream. It uses only the presence API, with the session cookie and its XSRF
// token like any other browser client; all addresses are relative to the board at `{base}/`.
//
// Consistency: the stream is opened first, and its first block says where it starts; the
// list is read after that, so every change the list may have missed comes on the stream.
// A change names its associate, whose presence is then read again (the presence, not the
// change, says what the user is now: an absence in force, say). After a lost connection the
// stream resumes after the last id it gave, so nothing is missed; an `event: reset` (the
// cursor is older than the server keeps) reads the whole list again.
(() => {
  const { t, apply, language, locale } = window.presenceTexts;
  const $ = (id) => document.getElementById(id);

  /** Associates whose presence changed and is to be read again, in batches of this many. */
  const BATCH = 1000;
  /** A stream that sends nothing for this long (it sends a comment every 15 s) is dead. */
  const SILENCE_MS = 40000;
  /** How long a changed row stays marked. */
  const MARK_MS = 4000;
  /** How often the session's cookies are renewed (they last six hours from the last renewal). */
  const RENEW_MS = 30 * 60 * 1000;
  /** Rows in one of the table's groups (see `group`). */
  const GROUP = 50;

  const collator = new Intl.Collator(language, { sensitivity: "base", numeric: true });
  const timeOfDay = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });
  const dayAndTime = new Intl.DateTimeFormat(locale, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });

  const STATUS = {
    StatusNormal: { key: "statusPresent", symbol: "✔" },
    StatusNotAvailable: { key: "statusNotPresent", symbol: "✖" },
    StatusDeleted: { key: "statusDeleted", symbol: "⊘" },
    StatusSystem: { key: "statusSystem", symbol: "⚙" },
    StatusReadOnly: { key: "statusReadOnly", symbol: "◐" },
    StatusSpm: { key: "statusSpm", symbol: "◆" },
    StatusNone: { key: "statusNone", symbol: "○" },
  };

  /** associateId → presence, as the API answers it. */
  const users = new Map();
  /** associateId → its row. */
  const rows = new Map();
  /** The signed-in user: `{associateId, login, administrator}`. */
  let me = null;
  /** The stream's position: every change up to it is shown (or being read). */
  let lastEventId = null;
  let loaded = false;
  const pending = new Set();
  let refreshing = false;
  const marks = new Map();

  // ---- the API

  const xsrfToken = () => {
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("XSRF-TOKEN="));
    return cookie ? decodeURIComponent(cookie.slice("XSRF-TOKEN=".length)) : "";
  };

  class Refusal extends Error {
    constructor(status, problem) {
      super(problem?.detail ?? `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  async function call(method, path, { body, headers = {}, signal } = {}) {
    const init = {
      method, signal, credentials: "same-origin",
      headers: { "X-XSRF-TOKEN": xsrfToken(), ...headers },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) sessionEnded();
    if (!response.ok) {
      let problem = null;
      try { problem = await response.json(); } catch { /* a refusal without a body */ }
      throw new Refusal(response.status, problem);
    }
    return response;
  }

  const read = async (path) => (await call("GET", path)).json();

  /** A refusal or failure, in words for the page. */
  function inWords(error) {
    if (!(error instanceof Refusal)) return t("networkError");
    const keys = { 400: "refused400", 403: "refused403", 404: "refused404", 409: "refused409",
      412: "refused412", 503: "refused503" };
    return t(keys[error.status] ?? "refusedOther", {
      status: error.status, detail: error.problem?.detail ?? "",
    });
  }

  function sessionEnded() {
    document.body.dataset.session = "ended";
    const error = $("board-error");
    error.replaceChildren(t("sessionEnded"), " ");
    const again = document.createElement("a");
    again.href = "./";
    again.textContent = t("signInAgain");
    error.append(again);
  }

  // ---- rows

  const template = (() => {
    // The roles keep the table a table to assistive technology: its parts are laid out as
    // blocks and grids (board.css), which would otherwise make some browsers forget it.
    const tr = document.createElement("tr");
    tr.setAttribute("role", "row");
    for (const name of ["login", "status", "message", "until", "absence", "actions"]) {
      const td = document.createElement("td");
      td.className = name;
      // Each row is named by its user.
      td.setAttribute("role", name === "login" ? "rowheader" : "cell");
      tr.append(td);
    }
    const symbol = document.createElement("span");
    symbol.className = "symbol";
    symbol.setAttribute("aria-hidden", "true");
    tr.cells[1].append(symbol, document.createElement("span"));
    return tr;
  })();

  const mayChange = (associateId) => me !== null && (me.administrator || me.associateId === associateId);
  /** The statuses the board sets: the others (deleted, system, ...) are an administrator's
   *  to set elsewhere, and saving present or not present over them would undo them. */
  const SELF_SERVICE = new Set(["StatusNormal", "StatusNotAvailable"]);

  function when(iso) {
    const at = new Date(iso);
    const today = new Date();
    return at.toDateString() === today.toDateString() ? timeOfDay.format(at) : dayAndTime.format(at);
  }

  /** Texts every row repeats, looked up once. */
  const statusWords = new Map();
  const wordsOf = (key) => {
    if (!statusWords.has(key)) statusWords.set(key, t(key));
    return statusWords.get(key);
  };
  const editButton = (() => {
    const edit = document.createElement("button");
    edit.type = "button";
    edit.className = "edit";
    return edit;
  })();

  /** Shows a presence in its row; `fresh`: the row is a new, empty one, whose empty cells
   *  need no writing (ten thousand rows are made at once). */
  function fill(tr, presence, fresh = false) {
    const status = STATUS[presence.status] ?? { key: presence.status, symbol: "•" };
    tr.dataset.associateId = presence.associateId;
    tr.dataset.status = presence.status;
    tr.dataset.available = presence.available;
    tr.dataset.revision = presence.revision;
    const [login, state, message, until, absence, actions] = tr.cells;
    const text = (cell, value) => {
      if (value || !fresh) cell.textContent = value;
    };
    login.textContent = presence.login;
    state.firstChild.textContent = status.symbol;
    state.lastChild.textContent = wordsOf(status.key);
    text(message, presence.message ?? "");
    text(until, presence.until ? t("untilTime", { time: when(presence.until) }) : "");
    text(absence, presence.absence
      ? t(presence.absence.message ? "absenceInForce" : "absenceInForceSilent", {
        until: when(presence.absence.until), message: presence.absence.message ?? "",
      })
      : "");
    if (!fresh || presence.status === "StatusDeleted") {
      tr.classList.toggle("deleted", presence.status === "StatusDeleted");
    }
    if (me !== null && me.associateId === presence.associateId) tr.classList.add("mine");
    const editable = mayChange(presence.associateId) && SELF_SERVICE.has(presence.status);
    if (editable && !actions.firstChild) {
      if (!editButton.textContent) editButton.textContent = t("change");
      const edit = editButton.cloneNode(true);
      edit.setAttribute("aria-label", t("changeOf", { login: presence.login }));
      actions.append(edit);
    } else if (!editable && actions.firstChild) {
      actions.replaceChildren();
    }
  }

  function shows(presence, query, filter) {
    if (filter === "available" && !presence.available) return false;
    if (filter === "notAvailable" && presence.available) return false;
    if (!query) return true;
    return presence.login.toLocaleLowerCase(language).includes(query)
      || (presence.message ?? "").toLocaleLowerCase(language).includes(query);
  }

  const query = () => $("search").value.trim().toLocaleLowerCase(language);

  /** Writes a text only when it changes: the counts are live regions, which a screen reader
   *  would otherwise read out at every change that moves nothing. */
  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function filterRows() {
    const [text, filter] = [query(), $("status-filter").value];
    for (const [id, tr] of rows) tr.hidden = !shows(users.get(id), text, filter);
    showCounts();
  }

  /** "N of M available now", and how many rows the search and filter show. */
  function showCounts() {
    summarize();
    let shown = 0;
    for (const tr of rows.values()) if (!tr.hidden) shown += 1;
    setText($("shown"), t("shownCount", { shown, total: rows.size }));
  }

  function summarize() {
    let available = 0;
    let total = 0;
    for (const presence of users.values()) {
      if (presence.status === "StatusDeleted") continue;
      total += 1;
      if (presence.available) available += 1;
    }
    const summary = $("summary");
    summary.dataset.available = available;
    summary.dataset.total = total;
    setText(summary, t("summary", { available, total }));
  }

  /** The table's row groups, each a `tbody` the browser lays out and paints only when it is
   *  near the screen (`content-visibility: auto` in board.css): ten thousand rows then cost
   *  little more to show than the few on the screen. */
  function group() {
    const body = document.createElement("tbody");
    body.setAttribute("role", "rowgroup");
    return body;
  }

  /** The rows made (`[presence, row]`), in login order, replacing the table's. */
  function renderAll(made) {
    made.sort(([a], [b]) => collator.compare(a.login, b.login) || a.associateId - b.associateId);
    users.clear();
    rows.clear();
    const groups = document.createDocumentFragment();
    let body = group();
    for (const [presence, tr] of made) {
      if (body.rows.length === GROUP) {
        groups.append(body);
        body = group();
      }
      users.set(presence.associateId, presence);
      rows.set(presence.associateId, tr);
      body.append(tr);
    }
    groups.append(body);
    const table = $("users");
    for (const old of [...table.tBodies]) old.remove();
    table.append(groups);
    filterRows();
  }

  function mark(tr) {
    tr.classList.remove("changed");
    // Restarts the highlight's animation when a row changes again while marked.
    void tr.offsetWidth;
    tr.classList.add("changed");
    clearTimeout(marks.get(tr));
    marks.set(tr, setTimeout(() => { tr.classList.remove("changed"); marks.delete(tr); }, MARK_MS));
  }

  const shown = (p) => JSON.stringify([p.login, p.status, p.message, p.until, p.absence, p.available]);

  /** A presence read again: its row updated (or added, in order), and marked if it changed. */
  function update(presence) {
    const id = presence.associateId;
    const before = users.get(id);
    if (before && before.revision > presence.revision) return;
    users.set(id, presence);
    let tr = rows.get(id);
    if (!tr) {
      tr = template.cloneNode(true);
      rows.set(id, tr);
    }
    fill(tr, presence);
    if (!before || before.login !== presence.login) {
      const table = $("users");
      const next = [...table.querySelectorAll("tbody tr")].find((other) => other !== tr
        && collator.compare(users.get(Number(other.dataset.associateId)).login, presence.login) > 0);
      if (next) next.before(tr);
      else table.tBodies[table.tBodies.length - 1].append(tr);
    }
    tr.hidden = !shows(presence, query(), $("status-filter").value);
    if (!before || shown(before) !== shown(presence)) mark(tr);
  }

  function remove(id) {
    rows.get(id)?.remove();
    rows.delete(id);
    users.delete(id);
  }

  // ---- reading

  /** Every presence, page by page, each page's rows made (`[presence, row]`) while the next
   *  page is on its way. */
  async function readEveryone() {
    const made = [];
    const pageAfter = (after) =>
      read(`presence/v1/users?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    let reading = pageAfter(null);
    while (reading) {
      const page = await reading;
      // The next page is asked for before this one's rows are made, so both go on at once.
      reading = page.next ? pageAfter(page.next) : null;
      for (const presence of page.items) {
        const tr = template.cloneNode(true);
        fill(tr, presence, true);
        made.push([presence, tr]);
      }
    }
    return made;
  }

  /** How long a failed refresh waits before it tries again; doubled at each failure. */
  let refreshWait = 1000;

  /** Reads again the presences of the associates whose changes came, one batch at a time. An
   *  id is taken out of `pending` before its read is sent, so that a change arriving while the
   *  read is on its way puts it back for the next read, which sees that change. */
  async function refresh() {
    if (refreshing || !loaded) return;
    refreshing = true;
    let ids = [];
    try {
      while (pending.size > 0) {
        ids = [...pending].slice(0, BATCH);
        ids.forEach((id) => pending.delete(id));
        const batch = await read(`presence/v1/users?ids=${ids.join(",")}`);
        ids = [];
        batch.items.forEach(update);
        batch.missing.forEach(remove);
        showCounts();
      }
      refreshWait = 1000;
    } catch (error) {
      ids.forEach((id) => pending.add(id));
      if (!(error instanceof Refusal && error.status === 401)) {
        setTimeout(refresh, refreshWait);
        refreshWait = Math.min(refreshWait * 2, 30000);
      }
    } finally {
      refreshing = false;
    }
  }

  async function loadEveryone() {
    loaded = false;
    performance.mark("presence:read");
    const made = await readEveryone();
    performance.measure("presence:read", "presence:read");
    performance.mark("presence:render");
    renderAll(made);
    loaded = true;
    // Ready once the rows are on the screen: a callback before the next frame, and a task
    // queued from it, which runs once that frame (its style, layout and paint) is made.
    requestAnimationFrame(() => setTimeout(() => {
      performance.measure("presence:render", "presence:render");
      ready();
    }));
    refresh();
  }

  // ---- the change stream

  function setConnection(state) {
    const connection = $("connection");
    connection.dataset.state = state;
    connection.textContent = t(state === "live" ? "connectionLive" : "connectionLost");
  }

  /** Splits a stream's text into its blocks' fields, as Server-Sent Events are read. */
  async function readEvents(body, onBlock, abort) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let block = { id: null, event: null, data: [] };
    let silence = setTimeout(abort, SILENCE_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(silence);
        silence = setTimeout(abort, SILENCE_MS);
        buffer += value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            await onBlock(block);
            block = { id: null, event: null, data: [] };
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "id") block.id = value;
          else if (field === "event") block.event = value;
          else if (field === "data") block.data.push(value);
        }
      }
    } finally {
      clearTimeout(silence);
    }
  }

  async function onBlock(block) {
    if (block.id !== null) lastEventId = block.id;
    if (block.data.length === 0) {
      // An `id:` alone is the stream's position, at its start: the list is read after it.
      // (A block of a comment alone, the keep-alive, has no id.)
      if (block.id !== null && !loaded) await loadEveryone();
      return;
    }
    if (block.event === "reset") {
      await loadEveryone();
    } else if (block.event === "change") {
      pending.add(JSON.parse(block.data.join("\n")).associateId);
      refresh();
    }
  }

  /** Ends the stream now: the page is being left. */
  let stopFollowing = () => {};

  async function follow() {
    let wait = 500;
    for (;;) {
      const abort = new AbortController();
      stopFollowing = () => abort.abort();
      try {
        const headers = { Accept: "text/event-stream" };
        if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
        const response = await call("GET", "presence/v1/changes/stream", { headers, signal: abort.signal });
        setConnection("live");
        setText($("board-error"), "");
        wait = 500;
        // Resumed after a list that could not be read: no position comes, the list is read now.
        if (!loaded && lastEventId !== null) await loadEveryone();
        await readEvents(response.body, onBlock, () => abort.abort());
      } catch (error) {
        if (error instanceof Refusal && error.status === 401) return;
        // Said on the page, a refusal above all (a 503 when the server has as many streams as
        // it allows): an empty or stale board must not look live.
        if (error instanceof Refusal || !abort.signal.aborted) setText($("board-error"), inWords(error));
      } finally {
        // Whatever ended this pass, its connection goes: a browser has six to a server.
        abort.abort();
      }
      setConnection("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 10000);
    }
  }

  /** Tells whoever watches the page (people, tests, benchmarks) that everyone is listed and
   *  shown and the stream is live, and how long that took from the navigation's start. */
  function ready() {
    if (document.body.dataset.ready === "true") return;
    window.presenceBoard = { renderedMs: performance.now() };
    document.body.dataset.ready = "true";
  }

  // ---- acting

  /** The associate the editor is open for, and their revision when it opened: a save over a
   *  change the user has not seen in the editor is refused (412), not made. */
  let editing = null;
  let editingRevision = null;

  function nextOccurrence(time) {
    const [hours, minutes] = time.split(":").map(Number);
    const at = new Date();
    at.setHours(hours, minutes, 0, 0);
    if (at <= new Date()) at.setDate(at.getDate() + 1);
    return at;
  }

  const localInput = (date) => {
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  };

  function syncUntil() {
    const present = document.querySelector('input[name="status"][value="StatusNormal"]').checked;
    $("editor-until").disabled = present;
  }

  function openEditor(id) {
    const presence = users.get(id);
    if (!presence) return;
    editing = id;
    editingRevision = presence.revision;
    $("editor-title").textContent = id === me.associateId
      ? t("editorTitleMine") : t("editorTitle", { login: presence.login });
    // While an absence is in force the presence shows it, not the status as set, which takes
    // over when it ends: the form starts from present, not from the absence.
    const away = presence.absence !== null;
    const status = presence.status === "StatusNormal" || away ? "StatusNormal" : "StatusNotAvailable";
    document.querySelector(`input[name="status"][value="${status}"]`).checked = true;
    $("editor-message").value = away ? "" : presence.message ?? "";
    $("editor-note").textContent = away
      ? t("editorDuringAbsence", { until: when(presence.absence.until) }) : "";
    $("editor-until").value = presence.until ? localInput(new Date(presence.until)).slice(11) : "";
    syncUntil();
    $("editor-error").textContent = "";
    $("absence-error").textContent = "";
    $("absences").replaceChildren();
    $("editor").showModal();
    showAbsences(id);
  }

  /** Reads the editor's user again: their row shows it, and a save goes over it. Planning or
   *  cancelling an absence is a change of the user too. */
  async function reread(id) {
    try {
      const current = await read(`presence/v1/users/${id}`);
      update(current);
      showCounts();
      if (editing === id) editingRevision = current.revision;
    } catch {
      // The stream brings the change all the same; a save over it meanwhile is refused.
    }
  }

  async function saveStatus(event) {
    event.preventDefault();
    const id = editing;
    const status = document.querySelector('input[name="status"]:checked').value;
    const body = { status };
    const message = $("editor-message").value.trim();
    if (message) body.message = message;
    const until = $("editor-until").value;
    if (status === "StatusNotAvailable" && until) body.until = nextOccurrence(until).toISOString();
    $("editor-error").textContent = "";
    $("editor-save").disabled = true;
    try {
      const response = await call("PUT", `presence/v1/users/${id}/status`, {
        body, headers: { "If-Match": `"${editingRevision}"` },
      });
      update(await response.json());
      showCounts();
      $("editor").close();
    } catch (error) {
      $("editor-error").textContent = inWords(error);
      if (error instanceof Refusal && error.status === 412) {
        // The row shows the other change; saving again is over that one.
        await reread(id);
      }
    } finally {
      $("editor-save").disabled = false;
    }
  }

  async function showAbsences(id) {
    try {
      const { items } = await read(`presence/v1/users/${id}/absences`);
      if (editing !== id) return;
      $("absences").replaceChildren(...items.map((absence) => {
        const li = document.createElement("li");
        li.dataset.absenceId = absence.id;
        const text = t(absence.message ? "absenceItem" : "absenceItemSilent", {
          from: dayAndTime.format(new Date(absence.from)),
          until: dayAndTime.format(new Date(absence.until)),
          message: absence.message ?? "",
        });
        const cancel = document.createElement("button");
        cancel.type = "button";
        cancel.className = "cancel-absence";
        cancel.textContent = t("cancelAbsence");
        cancel.setAttribute("aria-label", t("cancelAbsenceOf", { absence: text }));
        li.append(text, " ", cancel);
        return li;
      }));
      if (items.length === 0) {
        const li = document.createElement("li");
        li.className = "none";
        li.textContent = t("noAbsences");
        $("absences").append(li);
      }
    } catch (error) {
      $("absence-error").textContent = inWords(error);
    }
  }

  async function planAbsence(event) {
    event.preventDefault();
    const id = editing;
    const body = {
      from: new Date($("absence-from").value).toISOString(),
      until: new Date($("absence-until").value).toISOString(),
    };
    const message = $("absence-message").value.trim();
    if (message) body.message = message;
    $("absence-error").textContent = "";
    try {
      await call("POST", `presence/v1/users/${id}/absences`, { body });
      event.target.reset();
      await showAbsences(id);
      await reread(id);
    } catch (error) {
      $("absence-error").textContent = inWords(error);
    }
  }

  async function cancelAbsence(event) {
    const button = event.target.closest("button.cancel-absence");
    if (!button) return;
    const id = editing;
    $("absence-error").textContent = "";
    try {
      await call("DELETE", `presence/v1/users/${id}/absences/${button.parentElement.dataset.absenceId}`);
      await showAbsences(id);
      await reread(id);
      // The button pressed is gone with its absence: focus goes back to the list's heading.
      $("absences-title").focus();
    } catch (error) {
      $("absence-error").textContent = inWords(error);
    }
  }

  async function signOut() {
    try {
      await call("POST", "logout");
    } catch {
      // The session may have ended already: the sign-in page comes either way.
    }
    location.assign("./");
  }

  // ---- start

  async function start() {
    apply();
    document.title = t("boardTitle");
    setConnection("reconnecting");
    let filtering = 0;
    $("search").addEventListener("input", () => {
      cancelAnimationFrame(filtering);
      filtering = requestAnimationFrame(filterRows);
    });
    $("status-filter").addEventListener("change", filterRows);
    $("users").addEventListener("click", (event) => {
      const edit = event.target.closest("button.edit");
      if (edit) openEditor(Number(edit.closest("tr").dataset.associateId));
    });
    $("change-mine").addEventListener("click", () => openEditor(me.associateId));
    $("sign-out").addEventListener("click", signOut);
    $("editor-status").addEventListener("submit", saveStatus);
    $("editor-status").addEventListener("change", syncUntil);
    $("editor-close").addEventListener("click", () => $("editor").close());
    $("editor").addEventListener("close", () => { editing = null; });
    $("absence-form").addEventListener("submit", planAbsence);
    $("absences").addEventListener("click", cancelAbsence);
    // A page left for another may be kept to come back to (the back-forward cache), its
    // stream with it: a browser opens six connections to a server at most, and a few such
    // pages would take them all. The stream ends when the page is left; if it is shown again,
    // the stream resumes after its last id.
    window.addEventListener("pagehide", () => stopFollowing());
    for (let wait = 1000; me === null; wait = Math.min(wait * 2, 30000)) {
      try {
        me = await read("presence/v1/me");
      } catch (error) {
        if (error instanceof Refusal && error.status === 401) return;
        setText($("board-error"), inWords(error));
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
    setText($("board-error"), "");
    // Asking who is signed in renews the session's cookies, which would otherwise end some
    // hours after signing in under a board kept open all day.
    setInterval(() => read("presence/v1/me").catch(() => {}), RENEW_MS);
    $("me-name").textContent = t("signedInAs", { login: me.login });
    $("change-mine").disabled = false;
    follow();
  }

  start();
})();
