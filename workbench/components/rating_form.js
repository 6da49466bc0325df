// The rating form: one case, both reports, the criteria grid, preference, comment, submit,
// flag and guidelines, with every key handled here. Nothing goes to the server per key press:
// the only round trips are submit, flag, the guidelines acknowledgement and leaving a
// correction. A submit shows the next case at once (the server sends it ahead, `data.next`)
// while the answer is saved; a refusal brings the case back with its answer and the reason.
// Keys pressed while a round trip blocks the form are kept and applied to the case that comes
// back, so none is lost. Every answer stays a draft in localStorage until its save is
// confirmed (`clear_drafts`), so moving between cases never loses one. Every text from data is set with textContent (never as
// HTML): reports, questions and guidelines come from models, datasets and other users.

const DRAFT_PREFIX = "medvision-rate-draft:";
const DRAFT_DAYS = 30;
const FRAME_S = 1 / 25;
// Keys whose action goes to the server: one at a time, after the save on its way.
const WAITS_FOR_SAVE = new Set(["Enter", "f", "p"]);
const states = new WeakMap(); // parentElement -> the form's state across runs

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function readDraft(token) {
  try {
    const raw = window.localStorage.getItem(DRAFT_PREFIX + token);
    return raw ? JSON.parse(raw) : null;
  } catch (e) {
    return null; // storage off (private mode) or a damaged entry: the server copy still helps
  }
}

function writeDraft(token, answer) {
  try {
    const empty =
      !answer.choice && !answer.comment && !Object.values(answer.likert).some((s) => Object.keys(s).length);
    if (empty) window.localStorage.removeItem(DRAFT_PREFIX + token);
    else window.localStorage.setItem(DRAFT_PREFIX + token, JSON.stringify({ ...answer, at: Date.now() }));
  } catch (e) {
    /* storage full or off: the answer is still on screen */
  }
}

function dropDraft(token) {
  try {
    window.localStorage.removeItem(DRAFT_PREFIX + token);
  } catch (e) {
    /* nothing kept */
  }
}

function pruneDrafts() {
  try {
    const limit = Date.now() - DRAFT_DAYS * 86400 * 1000;
    for (let i = window.localStorage.length - 1; i >= 0; i--) {
      const name = window.localStorage.key(i);
      if (!name || !name.startsWith(DRAFT_PREFIX)) continue;
      const entry = JSON.parse(window.localStorage.getItem(name) || "{}");
      if (!entry.at || entry.at < limit) window.localStorage.removeItem(name);
    }
  } catch (e) {
    /* best effort */
  }
}

function copyAnswer(answer) {
  const likert = { left: {}, right: {} };
  for (const side of ["left", "right"]) {
    for (const [key, value] of Object.entries((answer && answer.likert && answer.likert[side]) || {})) {
      if (Number.isInteger(value)) likert[side][key] = value;
    }
  }
  return { choice: (answer && answer.choice) || null, likert, comment: (answer && answer.comment) || "" };
}

function build(root, state) {
  // The skeleton is static; only text and attributes change afterwards.
  const q = (id) => root.querySelector(`[data-testid="${id}"]`);
  state.nodes = {
    root: q("rate-form"),
    dataLabel: q("data-label"),
    study: q("study"),
    counter: q("case-counter"),
    progress: q("progress"),
    mode: q("mode-banner"),
    message: q("server-message"),
    errors: q("errors"),
    feedback: q("feedback"),
    calibration: q("calibration"),
    feedbackPanel: q("feedback-panel"),
    feedbackClose: q("feedback-close"),
    draftNote: q("draft-note"),
    media: q("media"),
    question: q("question"),
    left: q("report-left"),
    right: q("report-right"),
    grid: q("grid"),
    anchors: q("anchors"),
    comment: q("comment"),
    submit: q("submit"),
    flag: q("flag"),
    guidelines: q("guidelines"),
    leave: q("leave-correction"),
    guidePanel: q("guidelines-panel"),
    guideText: q("guidelines-text"),
    guideAck: q("guidelines-ack"),
    guideClose: q("guidelines-close"),
    flagPanel: q("flag-panel"),
    flagReasons: q("flag-reasons"),
    flagNote: q("flag-note"),
    flagConfirm: q("flag-confirm"),
    flagCancel: q("flag-cancel"),
    flagError: q("flag-error"),
    zoom: q("media-zoom"),
    keys: q("keys"),
    saving: q("save-status"),
    earlier: q("earlier"),
    earlierPanel: q("earlier-panel"),
    earlierList: q("earlier-list"),
    earlierClose: q("earlier-close"),
  };
  const n = state.nodes;
  for (const button of root.querySelectorAll("[data-choice]")) {
    button.addEventListener("click", () => act(state, () => choose(state, button.dataset.choice)));
  }
  n.submit.addEventListener("click", () => act(state, () => submit(state)));
  n.flag.addEventListener("click", () => act(state, () => openFlag(state)));
  n.guidelines.addEventListener("click", () => openGuidelines(state));
  n.guideAck.addEventListener("click", () => acknowledge(state));
  n.guideClose.addEventListener("click", () => closeGuidelines(state));
  n.flagConfirm.addEventListener("click", () => act(state, () => confirmFlag(state)));
  n.flagCancel.addEventListener("click", () => closeFlag(state));
  n.leave.addEventListener("click", () => act(state, () => leaveCorrection(state)));
  n.zoom.addEventListener("click", () => (n.zoom.hidden = true));
  n.earlier.addEventListener("click", () => act(state, () => askEarlier(state)));
  n.earlierClose.addEventListener("click", () => closeEarlier(state));
  n.feedbackClose.addEventListener("click", () => closeFeedback(state));
  n.comment.addEventListener("input", () => {
    state.answer.comment = n.comment.value;
    changed(state);
  });
  n.flagNote.addEventListener("input", () => (state.flagNote = n.flagNote.value));
}

function blocked(state) {
  // A round trip whose answer decides what is shown next (not a submit shown ahead).
  return Boolean(state.pending) && !state.ahead;
}

function act(state, fn) {
  if (blocked(state)) return; // a click while the case may still change under it
  fn();
}

// ---------------------------------------------------------------- rendering one case

function cells(state) {
  // The digit order: every criterion of Report A top to bottom, then of Report B.
  const out = [];
  for (const side of ["left", "right"]) for (const c of state.data.form.criteria) out.push([side, c.key]);
  return out;
}

function renderGrid(state) {
  const { grid } = state.nodes;
  grid.replaceChildren();
  const head = el("div", { class: "grid-head" });
  head.append(el("span", {}, ""), el("span", {}, "Report A"), el("span", {}, "Report B"));
  grid.append(head);
  state.rowNodes = {};
  for (const criterion of state.data.form.criteria) {
    const line = el("div", { class: "grid-row" });
    const label = el("span", { class: "criterion", title: criterion.question || "" }, criterion.label);
    line.append(label);
    for (const side of ["left", "right"]) {
      const row = el("div", { class: "points", "data-testid": `row-${side}-${criterion.key}`, role: "group" });
      row.setAttribute("aria-label", `${criterion.label}, Report ${side === "left" ? "A" : "B"}`);
      for (const point of state.data.scale) {
        const anchor = criterion.anchors[String(point)] || "";
        const button = el(
          "button",
          { type: "button", class: "point", "data-testid": `point-${side}-${criterion.key}-${point}`, title: anchor },
          String(point),
        );
        button.addEventListener("click", () =>
          act(state, () => {
            state.active = cells(state).findIndex(([s, k]) => s === side && k === criterion.key);
            rate(state, point, false);
          }),
        );
        row.append(button);
      }
      row.addEventListener("mousedown", () => {
        state.active = cells(state).findIndex(([s, k]) => s === side && k === criterion.key);
        paint(state);
      });
      line.append(row);
      state.rowNodes[`${side}:${criterion.key}`] = row;
    }
    grid.append(line);
  }
}

function renderMedia(state) {
  const { media, zoom } = state.nodes;
  media.replaceChildren();
  const items = state.data.task.media || [];
  const images = items.filter((m) => m.kind === "image");
  media.dataset.count = String(images.length);
  items.forEach((item, index) => {
    if (item.kind === "video") {
      const video = el("video", {
        "data-testid": "media-video",
        src: item.src,
        loop: "",
        muted: "",
        autoplay: "",
        playsinline: "",
        controls: "",
      });
      video.muted = true;
      const bar = el("div", { class: "frame-bar" });
      const back = el("button", { type: "button", "data-testid": "frame-prev", title: "Previous frame (,)" }, "\u25C0 frame");
      const play = el("button", { type: "button", "data-testid": "frame-play", title: "Play / pause (Space)" }, "play / pause");
      const next = el("button", { type: "button", "data-testid": "frame-next", title: "Next frame (.)" }, "frame \u25B6");
      back.addEventListener("click", () => step(state, -1));
      next.addEventListener("click", () => step(state, 1));
      play.addEventListener("click", () => playPause(state));
      bar.append(back, play, next);
      media.append(video, bar);
    } else if (item.kind === "frames") {
      const strip = el("div", { class: "frames", "data-testid": `media-frames-${index}` });
      const big = el("img", { class: "frame-big", alt: "Frame", "data-testid": "media-frame" });
      strip.dataset.index = "0";
      const show = (i) => {
        const count = item.frames.length;
        const at = ((i % count) + count) % count;
        strip.dataset.index = String(at);
        big.src = item.frames[at];
        strip.querySelector(".frame-label").textContent = `frame ${at + 1} of ${count}`;
      };
      const bar = el("div", { class: "frame-bar" });
      const back = el("button", { type: "button", "data-testid": "frame-prev", title: "Previous frame (,)" }, "\u25C0 frame");
      const label = el("span", { class: "frame-label" }, "");
      const next = el("button", { type: "button", "data-testid": "frame-next", title: "Next frame (.)" }, "frame \u25B6");
      back.addEventListener("click", () => show(Number(strip.dataset.index) - 1));
      next.addEventListener("click", () => show(Number(strip.dataset.index) + 1));
      big.addEventListener("click", () => openZoom(state, big.src));
      bar.append(back, label, next);
      strip.append(big, bar);
      strip.step = (d) => show(Number(strip.dataset.index) + d);
      media.append(strip);
      show(0);
    } else {
      const image = el("img", {
        "data-testid": `media-image-${images.indexOf(item)}`,
        src: item.src,
        alt: `Image ${images.indexOf(item) + 1} of the case`,
        title: "Click to zoom (Z)",
      });
      image.addEventListener("click", () => openZoom(state, item.src));
      media.append(image);
    }
  });
  if (!items.length) media.append(el("p", { class: "muted" }, "No media for this case."));
  zoom.hidden = true;
}

function openZoom(state, src) {
  const { zoom } = state.nodes;
  zoom.replaceChildren(el("img", { src, alt: "Zoomed image" }), el("span", { class: "muted" }, "Click or Esc to close"));
  zoom.hidden = false;
}

function step(state, direction) {
  const video = state.nodes.media.querySelector("video");
  if (video) {
    video.pause();
    video.currentTime = Math.max(0, video.currentTime + direction * FRAME_S);
    return;
  }
  const strip = state.nodes.media.querySelector(".frames");
  if (strip) strip.step(direction);
}

function playPause(state) {
  const video = state.nodes.media.querySelector("video");
  if (!video) return;
  if (video.paused) video.play().catch(() => {});
  else video.pause();
}

function loadCase(state, task, serverAnswer) {
  // A new case (or the same case after a reload): restore a draft, draw everything once.
  const { data, nodes } = state;
  state.task = task;
  state.token = task.token;
  state.shown += 1;
  nodes.root.dataset.tokenSeq = String(state.shown);
  const draft = data.mode === "rate" ? readDraft(task.token) : null;
  state.answer = copyAnswer(draft || serverAnswer);
  state.restored = Boolean(draft) && data.mode === "rate";
  state.errors = [];
  state.flagOpen = false;
  state.flagReason = null;
  state.flagNote = "";
  nodes.dataLabel.hidden = !data.data_label;
  nodes.dataLabel.textContent = data.data_label || "";
  nodes.study.textContent = task.study || "";
  nodes.counter.textContent = `Case ${task.number} of ${task.total}`;
  nodes.progress.textContent = data.mode === "rate" ? `${task.done} / ${task.total} done` : "";
  nodes.question.hidden = !task.question;
  nodes.question.querySelector(".text").textContent = task.question || "";
  nodes.left.textContent = task.left || "";
  nodes.right.textContent = task.right || "";
  nodes.left.scrollTop = 0;
  nodes.right.scrollTop = 0;
  nodes.comment.value = state.answer.comment;
  renderMedia(state);
  renderGrid(state);
  const order = cells(state);
  const first = order.findIndex(([side, key]) => state.answer.likert[side][key] === undefined);
  state.active = first < 0 ? order.length - 1 : first;
  // The new case starts at the top, with the keys on this form.
  toTop(nodes.root);
  if (nodes.root.getRootNode().activeElement || document.activeElement) {
    const active = document.activeElement;
    if (active && active !== document.body && active.blur) active.blur();
  }
  nodes.root.focus({ preventScroll: true });
}

function toTop(node) {
  let at = node;
  while (at) {
    if (at.scrollTop) at.scrollTop = 0;
    at = at.parentNode || (at.host !== undefined ? at.host : null);
  }
  window.scrollTo(0, 0);
}

function paint(state) {
  // Everything that follows the answer: pressed buttons, the active row, errors, anchors.
  const { nodes, answer, data } = state;
  const order = cells(state);
  const missing = new Set(state.errors.map((e) => e.field));
  order.forEach(([side, key], index) => {
    const row = state.rowNodes[`${side}:${key}`];
    const value = answer.likert[side][key];
    row.dataset.value = value === undefined ? "" : String(value);
    row.dataset.active = index === state.active ? "true" : "false";
    row.dataset.missing = missing.has(`${side}:${key}`) ? "true" : "false";
    for (const button of row.children) button.setAttribute("aria-pressed", String(Number(button.textContent) === value));
  });
  for (const button of nodes.root.querySelectorAll("[data-choice]")) {
    button.setAttribute("aria-pressed", String(button.dataset.choice === answer.choice));
  }
  nodes.root.querySelector(".prefs").dataset.missing = missing.has("choice") ? "true" : "false";
  nodes.comment.dataset.missing = missing.has("comment") ? "true" : "false";
  // The anchors of the active criterion, the chosen point marked.
  const [side, key] = order[state.active] || order[0];
  const criterion = data.form.criteria.find((c) => c.key === key);
  nodes.anchors.replaceChildren(
    el("div", { class: "anchors-title" }, `${criterion.label}, Report ${side === "left" ? "A" : "B"}: ${criterion.question || ""}`),
  );
  const list = el("ol", { class: "anchor-list" });
  for (const point of data.scale) {
    const item = el("li", { "data-point": String(point) });
    item.append(el("b", {}, String(point)), document.createTextNode(" " + (criterion.anchors[String(point)] || "")));
    if (answer.likert[side][key] === point) item.className = "chosen";
    list.append(item);
  }
  nodes.anchors.append(list);
  // Errors, all at once, above the form.
  nodes.errors.replaceChildren();
  nodes.errors.hidden = !state.errors.length;
  if (state.errors.length) {
    nodes.errors.append(el("strong", {}, "Still to answer:"));
    const ul = el("ul");
    for (const error of state.errors) ul.append(el("li", { "data-testid": "error-item" }, error.text));
    nodes.errors.append(ul);
  }
  nodes.draftNote.hidden = !state.restored;
  nodes.root.dataset.state = blocked(state) ? "saving" : "ready";
  nodes.root.dataset.ready = String(!blocked(state));
  nodes.root.dataset.pending = String(Boolean(state.pending)); // a save (or other event) on its way
  nodes.root.dataset.case = String(state.task ? state.task.number : "");
  nodes.submit.disabled = blocked(state);
  nodes.submit.textContent = blocked(state) ? "Saving\u2026" : data.mode === "correct" ? "Save correction (Enter)" : "Submit (Enter)";
  nodes.saving.hidden = !(state.pending && state.ahead);
  nodes.saving.textContent = state.ahead ? `Saving your answer to case ${state.aheadFrom.number}\u2026` : "";
  nodes.flagPanel.hidden = !state.flagOpen;
  if (state.flagOpen) paintFlag(state);
}

function paintMessages(state) {
  const { nodes, data } = state;
  const message = data.message;
  nodes.message.hidden = !message;
  nodes.message.className = message ? `notice ${message.kind}` : "notice";
  nodes.message.textContent = message ? message.text : "";
  if (data.feedback) {
    // A training case's reference answer, read before going on (Enter or Esc closes it).
    nodes.feedback.textContent = data.feedback;
    nodes.calibration.hidden = !data.calibration;
    nodes.calibration.textContent = data.calibration || "";
    nodes.feedbackPanel.hidden = false;
    state.feedbackOpen = true;
  }
  const correcting = data.mode === "correct";
  nodes.mode.hidden = !correcting;
  nodes.mode.querySelector(".text").textContent = correcting
    ? `Changing your earlier answer to case ${data.task.number}. Save it, or go back to your next case (Esc).`
    : "";
  nodes.flag.hidden = !(data.flag_reasons && data.flag_reasons.length) || correcting;
  nodes.guideText.textContent = data.guidelines || "";
}

// ---------------------------------------------------------------- the answer

function changed(state) {
  if (state.data.mode === "rate") writeDraft(state.token, state.answer);
  if (state.errors.length) state.errors = validate(state); // shrink the list as fields fill
  paint(state);
}

function choose(state, choice) {
  state.answer.choice = choice;
  changed(state);
}

function rate(state, value, advance) {
  const order = cells(state);
  const [side, key] = order[state.active];
  state.answer.likert[side][key] = value;
  if (advance && state.active < order.length - 1) state.active += 1;
  changed(state);
}

function moveRow(state, delta) {
  const order = cells(state);
  state.active = Math.min(order.length - 1, Math.max(0, state.active + delta));
  paint(state);
}

function switchSide(state) {
  const count = state.data.form.criteria.length;
  state.active = (state.active + count) % (2 * count);
  paint(state);
}

function validate(state) {
  const { answer, data } = state;
  const errors = [];
  if (!answer.choice) errors.push({ field: "choice", text: "Which report is better (A, B, T or X)" });
  if (data.form.require_likert) {
    for (const [side, key] of cells(state)) {
      if (answer.likert[side][key] === undefined) {
        const label = data.form.criteria.find((c) => c.key === key).label;
        errors.push({ field: `${side}:${key}`, text: `Report ${side === "left" ? "A" : "B"}: ${label} (1-5)` });
      }
    }
  }
  if (answer.choice && data.form.comment_required_for.includes(answer.choice) && !answer.comment.trim()) {
    errors.push({ field: "comment", text: `A comment saying why ('${data.preferences[answer.choice]}')` });
  }
  return errors;
}

function submit(state) {
  if (state.pending) {
    // The answer before is still on its way: this one goes as soon as it is confirmed.
    state.queue.push({ key: "Enter" });
    return;
  }
  state.errors = validate(state);
  if (state.errors.length) {
    const order = cells(state);
    const firstRow = order.findIndex(([s, k]) => state.errors.some((e) => e.field === `${s}:${k}`));
    if (firstRow >= 0) state.active = firstRow;
    paint(state);
    return;
  }
  const correcting = state.data.mode === "correct";
  send(state, correcting ? "correct" : "submit", {
    token: state.token,
    choice: state.answer.choice,
    likert: state.answer.likert,
    comment: state.answer.comment,
  });
  const next = state.data.next;
  if (!correcting && next && next.token !== state.token) {
    // The next case at once; the draft of this one stays until the save is confirmed.
    state.ahead = true;
    state.aheadFrom = state.task;
    state.data = { ...state.data, message: null, feedback: null };
    loadCase(state, next, null);
    paintMessages(state);
    paint(state);
  }
}

function send(state, event, value) {
  state.sent += 1;
  const id = `${state.data.session}:${state.mount}:${state.sent}`;
  state.pending = id;
  paint(state);
  state.setTriggerValue(event, { ...value, id });
  // No answer at all (a lost connection): back to that case, and say so.
  window.setTimeout(() => {
    if (state.pending !== id) return;
    state.pending = null;
    state.queue = [];
    if (state.ahead) {
      state.ahead = false;
      loadCase(state, state.aheadFrom, null);
    }
    state.data = { ...state.data, feedback: null, message: { kind: "error", text: "No answer from the server yet: check the connection and press Enter to send again. Your answer is kept in this browser." } };
    paintMessages(state);
    paint(state);
  }, 20000);
}

function leaveCorrection(state) {
  send(state, "leave", {});
}

// ---------------------------------------------------------------- panels

function openGuidelines(state) {
  const { nodes, data } = state;
  nodes.guidePanel.hidden = false;
  nodes.guideAck.hidden = !data.guidelines_required;
  nodes.guideClose.hidden = Boolean(data.guidelines_required);
  state.guideOpen = true;
}

function closeGuidelines(state) {
  if (state.data.guidelines_required && !state.acked) return;
  state.nodes.guidePanel.hidden = true;
  state.guideOpen = false;
}

function acknowledge(state) {
  state.acked = true;
  state.nodes.guidePanel.hidden = true;
  state.guideOpen = false;
  // The record goes to the server; keys pressed meanwhile wait for it (one event at a time:
  // Streamlit keeps only the newest of two events queued for the same run).
  send(state, "ack", {});
}

function openFlag(state) {
  if (state.data.mode !== "rate" || !(state.data.flag_reasons || []).length) return;
  state.flagOpen = true;
  state.flagError = "";
  paint(state);
}

function closeFlag(state) {
  state.flagOpen = false;
  paint(state);
}

function paintFlag(state) {
  const { nodes, data } = state;
  nodes.flagReasons.replaceChildren();
  data.flag_reasons.forEach((reason, index) => {
    const button = el(
      "button",
      { type: "button", class: "reason", "data-testid": `flag-reason-${reason.key}`, "aria-pressed": String(state.flagReason === reason.key) },
      `${index + 1}  ${reason.label}`,
    );
    button.addEventListener("click", () => {
      state.flagReason = reason.key;
      paint(state);
      if (reason.needs_note) nodes.flagNote.focus();
    });
    nodes.flagReasons.append(button);
  });
  nodes.flagNote.value = state.flagNote;
  nodes.flagError.hidden = !state.flagError;
  nodes.flagError.textContent = state.flagError || "";
}

function confirmFlag(state) {
  const reason = (state.data.flag_reasons || []).find((r) => r.key === state.flagReason);
  if (!reason) {
    state.flagError = "Choose a reason (1, 2 or 3).";
  } else if (reason.needs_note && !state.flagNote.trim()) {
    state.flagError = `'${reason.label}' needs a note saying what is wrong.`;
  } else {
    state.flagOpen = false;
    send(state, "flag", { token: state.token, reason: reason.key, note: state.flagNote });
    return;
  }
  paint(state);
}

function askEarlier(state) {
  // The list comes from the server only when asked (it grows with every answer).
  state.wantEarlier = true;
  send(state, "list", {});
}

function openEarlier(state) {
  const { nodes, data } = state;
  state.earlierOpen = true;
  state.earlierAt = Math.max(0, (data.earlier || []).length - 1);
  nodes.earlierList.replaceChildren();
  if (!(data.earlier || []).length) nodes.earlierList.append(el("p", { class: "muted" }, "Nothing to change yet."));
  (data.earlier || []).forEach((entry, index) => {
    const button = el("button", { type: "button", "data-testid": `answered-${entry.number}` }, entry.label);
    button.addEventListener("click", () => openAnswered(state, index));
    nodes.earlierList.append(button);
  });
  nodes.earlierPanel.hidden = false;
  paintEarlier(state);
}

function paintEarlier(state) {
  [...state.nodes.earlierList.querySelectorAll("button")].forEach((button, index) => {
    button.dataset.active = String(index === state.earlierAt);
    if (index === state.earlierAt) button.scrollIntoView({ block: "nearest" });
  });
}

function closeFeedback(state) {
  state.feedbackOpen = false;
  state.nodes.feedbackPanel.hidden = true;
}

function closeEarlier(state) {
  state.earlierOpen = false;
  state.nodes.earlierPanel.hidden = true;
}

function openAnswered(state, index) {
  const entry = (state.data.earlier || [])[index];
  if (!entry) return;
  closeEarlier(state);
  send(state, "open", { token: entry.token });
}

// ---------------------------------------------------------------- keys

function keyTarget(event) {
  const path = event.composedPath ? event.composedPath() : [];
  return path[0] || event.target;
}

function onKey(state, event) {
  if (!state.nodes.root.isConnected) return;
  const target = keyTarget(event);
  const inForm = state.nodes.root.contains(target) || target === document.body || target === document.documentElement;
  const tag = (target && target.tagName) || "";
  const editable = tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  if (editable && !inForm) return; // typing into another field of the page
  if (event.altKey || event.metaKey) return;
  const key = event.key;
  // The comment box and the flag note take text; Ctrl+Enter submits, Esc leaves them.
  if (target === state.nodes.comment || target === state.nodes.flagNote) {
    if (key === "Escape") {
      target.blur();
      state.nodes.root.focus({ preventScroll: true });
      stop(event);
    } else if (key === "Enter" && event.ctrlKey) {
      stop(event);
      handle(state, { key: "Enter", ctrl: true, fromText: target === state.nodes.flagNote ? "flag" : "comment" });
    } else {
      event.stopPropagation(); // plain typing: not a shortcut of the page
    }
    return;
  }
  if (event.ctrlKey && key !== "Enter") return; // the browser's own shortcuts (copy, reload ...)
  const known = /^[1-9]$/.test(key) || ["Enter", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Escape", " ", ",", "."].includes(key) || /^[abtxcfgzp]$/i.test(key);
  if (!known) return;
  if (key === " " && tag === "BUTTON") return; // Space presses a focused button
  // Enter on a focused button of the page outside the form presses that button; inside the
  // form it submits (or confirms the open panel) wherever a click left the focus.
  if (key === "Enter" && tag === "BUTTON" && !state.nodes.root.contains(target)) return;
  stop(event);
  if (blocked(state) || state.queue.length) {
    // In order: once a key waits (a submit behind the save before it), the keys after it wait too.
    state.queue.push({ key, ctrl: event.ctrlKey });
    return;
  }
  handle(state, { key, ctrl: event.ctrlKey });
}

function stop(event) {
  event.preventDefault();
  event.stopPropagation();
  event.stopImmediatePropagation();
}

function handle(state, press) {
  const key = press.key.length === 1 ? press.key.toLowerCase() : press.key;
  if (state.feedbackOpen) {
    if (key === "Enter" || key === "Escape") closeFeedback(state);
    return;
  }
  if (state.guideOpen) {
    if (key === "Enter" && state.data.guidelines_required && !state.acked) acknowledge(state);
    else if (key === "Escape" || key === "g" || key === "Enter") closeGuidelines(state);
    return;
  }
  if (state.earlierOpen) {
    const count = (state.data.earlier || []).length;
    if (key === "ArrowUp") state.earlierAt = Math.max(0, state.earlierAt - 1);
    else if (key === "ArrowDown") state.earlierAt = Math.min(count - 1, state.earlierAt + 1);
    else if (key === "Enter") return openAnswered(state, state.earlierAt);
    else if (key === "Escape" || key === "p") return closeEarlier(state);
    paintEarlier(state);
    return;
  }
  if (!state.nodes.zoom.hidden && (key === "Escape" || key === "z")) {
    state.nodes.zoom.hidden = true;
    return;
  }
  if (state.flagOpen) {
    const reasons = state.data.flag_reasons || [];
    if (/^[1-9]$/.test(key) && Number(key) <= reasons.length) {
      state.flagReason = reasons[Number(key) - 1].key;
      paint(state);
      if (reasons[Number(key) - 1].needs_note) state.nodes.flagNote.focus();
    } else if (key === "Enter") confirmFlag(state);
    else if (key === "Escape" || key === "f") closeFlag(state);
    return;
  }
  if (press.fromText === "comment" && key === "Enter") {
    state.nodes.comment.blur();
    submit(state);
    return;
  }
  if (state.pending && WAITS_FOR_SAVE.has(key)) {
    // Submit, flag and the earlier answers go to the server after the save before them
    // (the list then holds the answer just given).
    state.queue.push(press);
    return;
  }
  const scale = state.data.scale;
  if (/^[1-9]$/.test(key)) {
    if (scale.includes(Number(key))) rate(state, Number(key), true);
    return;
  }
  switch (key) {
    case "a":
      return choose(state, "left");
    case "b":
      return choose(state, "right");
    case "t":
      return choose(state, "tie");
    case "x":
      return choose(state, "both_bad");
    case "ArrowUp":
      return moveRow(state, -1);
    case "ArrowDown":
      return moveRow(state, 1);
    case "ArrowLeft":
    case "ArrowRight":
      return switchSide(state);
    case "Enter":
      return submit(state);
    case "c":
      state.nodes.comment.focus();
      return;
    case "f":
      return openFlag(state);
    case "g":
      return openGuidelines(state);
    case "p":
      return askEarlier(state);
    case "z": {
      const image = state.nodes.media.querySelector("img");
      if (image) openZoom(state, image.src);
      return;
    }
    case ",":
      return step(state, -1);
    case ".":
      return step(state, 1);
    case " ":
      return playPause(state);
    case "Escape":
      if (state.data.mode === "correct") leaveCorrection(state);
      return;
    default:
      return;
  }
}

function drain(state) {
  // Keys pressed while the server answered, applied in order to the case now shown.
  while (state.queue.length && !blocked(state)) {
    const press = state.queue.shift();
    const key = press.key.length === 1 ? press.key.toLowerCase() : press.key;
    if (state.pending && WAITS_FOR_SAVE.has(key)) {
      state.queue.unshift(press); // it waits for the save before it, and so do the keys after
      return;
    }
    handle(state, press);
  }
}

// ---------------------------------------------------------------- the entry point

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let state = states.get(parentElement);
  if (!state) {
    // `mount` keeps event ids unique when the form is drawn again in the same session.
    const mount = Math.random().toString(36).slice(2, 8);
    state = { token: null, shown: 0, sent: 0, mount, queue: [], pending: null, ahead: false, acked: false, data };
    states.set(parentElement, state);
    build(parentElement, state);
    state.listener = (event) => onKey(state, event);
    window.addEventListener("keydown", state.listener, true);
    pruneDrafts();
  }
  state.setTriggerValue = setTriggerValue;
  const previous = state.data;
  state.data = data;
  for (const token of data.clear_drafts || []) dropDraft(token);
  if (state.pending && data.reply !== state.pending) {
    // A render from before the event was handled: the case it shows may be out of date.
    paint(state);
    return cleanup(state, parentElement);
  }
  state.pending = null;
  state.ahead = false;
  const newCase = state.token !== data.task.token || data.mode !== previous.mode;
  if (newCase) loadCase(state, data.task, data.answer);
  paintMessages(state);
  paint(state);
  if (data.guidelines_required && !state.acked && state.shown === 1 && newCase) openGuidelines(state);
  if (state.wantEarlier && data.earlier) {
    state.wantEarlier = false;
    openEarlier(state);
  }
  if (!data.guidelines_required) state.acked = true;
  drain(state);
  return cleanup(state, parentElement);
}

function cleanup(state, parentElement) {
  return () => {
    window.removeEventListener("keydown", state.listener, true);
    states.delete(parentElement);
  };
}
