/* The demo's chat page. Plain JavaScript, no build step, no libraries.
 *
 * It talks only to the sandbox: its control API (/control/...: send as a person, read a chat
 * with the snapshot long-poll, fetch files) and the demo's routes (/demo/...: the page's words
 * from prompts/, the people to play, the clock). The bot sees nothing but Telegram.
 *
 * Every text node is made with textContent (never innerHTML), so nothing a person or the bot
 * writes can run as markup here.
 */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  const state = {
    data: null,
    strings: {},
    personas: [],
    current: null,
    pollToken: 0,
    pollAbort: null,
    rendered: new Map(), // message_id -> {sig, node}
    seen: new Map(), // user_id -> bot messages already seen
    firstRender: true,
    playable: new Set(), // voice file ids recorded here (a synthetic clip cannot be played)
    clockBase: null,
    followUntil: 0,
    nextDue: null,
    recorder: null,
    formats: {},
  };

  // ---------------------------------------------------------------- words
  function t(key, values = {}) {
    let text = state.strings[key];
    if (text === undefined) return key;
    for (const [name, value] of Object.entries(values)) {
      text = text.split(`{${name}}`).join(String(value));
    }
    return text;
  }

  function applyStrings() {
    document.documentElement.lang = state.data.lang || "en";
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    for (const node of document.querySelectorAll("[data-t-placeholder]")) {
      node.setAttribute("placeholder", t(node.dataset.tPlaceholder));
    }
    for (const node of document.querySelectorAll("[data-t-label]")) {
      node.setAttribute("aria-label", t(node.dataset.tLabel));
    }
    const zone = state.data.timezone;
    const lang = state.data.lang || "en-GB";
    state.formats.long = new Intl.DateTimeFormat(lang, {
      timeZone: zone, weekday: "long", day: "numeric", month: "long",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    });
    state.formats.short = new Intl.DateTimeFormat(lang, {
      timeZone: zone, weekday: "short", day: "numeric", month: "short",
      hour: "2-digit", minute: "2-digit",
    });
  }

  // ---------------------------------------------------------------- HTTP
  async function api(path, { method = "GET", body, signal } = {}) {
    const options = { method, signal, headers: {} };
    if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, options);
    let payload = null;
    try {
      payload = await response.json();
    } catch (error) {
      payload = null;
    }
    if (!response.ok) {
      const reason = (payload && payload.error) || `${response.status}`;
      const error = new Error(reason);
      error.status = response.status;
      throw error;
    }
    return payload;
  }

  function say(text, target = "status") {
    $(target).textContent = text;
  }

  function announce(text) {
    const line = el("p", { text });
    const announcer = $("announcer");
    announcer.append(line);
    while (announcer.childNodes.length > 5) announcer.firstChild.remove();
  }

  // The bot's short answer to a button press, shown over the chat as Telegram does; the box
  // is a live region that is always there (empty when idle), so screen readers hear it too.
  let toastTimer = null;
  function toast(text) {
    const node = $("toast");
    node.textContent = t("bot_answer", { text });
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.textContent = ""; }, 3000);
  }

  // ---------------------------------------------------------------- people
  function renderPersonas() {
    const list = $("personas");
    list.replaceChildren();
    for (const persona of state.personas) {
      const pressed = state.current && state.current.user_id === persona.user_id;
      const badge = el("span", { className: "badge", hidden: true });
      const button = el(
        "button",
        {
          type: "button",
          className: "persona",
          "aria-pressed": pressed ? "true" : "false",
          "data-user": persona.user_id,
          onclick: () => choose(persona.user_id, true),
        },
        el("span", { className: "persona-name", text: persona.name }),
        el("span", { className: "persona-desc", text: persona.description }),
        badge,
      );
      list.append(el("li", {}, button));
    }
    updateBadges();
  }

  function updateBadges() {
    for (const persona of state.personas) {
      const button = document.querySelector(`.persona[data-user="${persona.user_id}"]`);
      if (!button) continue;
      const badge = button.querySelector(".badge");
      const current = state.current && state.current.user_id === persona.user_id;
      if (current) state.seen.set(persona.user_id, persona.bot_messages || 0);
      const unread = (persona.bot_messages || 0) - (state.seen.get(persona.user_id) || 0);
      if (unread > 0) {
        badge.hidden = false;
        badge.textContent = t("unread", { count: unread });
        badge.setAttribute("aria-label", t("unread_label", { count: unread }));
      } else {
        badge.hidden = true;
        badge.textContent = "";
      }
    }
  }

  async function refreshPersonas() {
    try {
      const rows = await api("/demo/personas");
      const known = new Set(state.personas.map((p) => p.user_id));
      state.personas = rows;
      if (rows.some((p) => !known.has(p.user_id))) renderPersonas();
      for (const p of rows) if (!state.seen.has(p.user_id)) state.seen.set(p.user_id, p.bot_messages);
      updateBadges();
    } catch (error) {
      /* the snapshot loop reports a lost connection */
    }
  }

  function choose(userId, moveFocus) {
    const persona = state.personas.find((p) => p.user_id === userId);
    if (!persona) return;
    state.current = persona;
    history.replaceState(null, "", `#user=${userId}`);
    for (const button of document.querySelectorAll(".persona")) {
      button.setAttribute("aria-pressed", Number(button.dataset.user) === userId ? "true" : "false");
    }
    $("chat-heading").textContent = t("chat_heading", { name: persona.name });
    $("chat-with").textContent = t("chat_with", { bot: state.data.bot.name });
    showHint(0);
    $("messages").setAttribute("aria-label", t("messages_label", { bot: state.data.bot.name }));
    $("messages").replaceChildren();
    state.rendered.clear();
    state.firstRender = true;
    say("");
    updateInviteCard(0);
    updateBadges();
    startPolling(userId);
    if (moveFocus) $("chat-heading").focus();
  }

  // ---------------------------------------------------------------- reading the chat
  function startPolling(userId) {
    state.pollToken += 1;
    if (state.pollAbort) state.pollAbort.abort();
    const token = state.pollToken;
    const abort = new AbortController();
    state.pollAbort = abort;
    pollLoop(userId, token, abort.signal);
  }

  async function pollLoop(userId, token, signal) {
    let version = -1;
    let failures = 0;
    while (token === state.pollToken) {
      try {
        const wait = version < 0 ? 0 : state.data.poll_seconds;
        const snapshot = await api(
          `/control/chats/${userId}/snapshot?version=${version}&wait=${wait}`, { signal },
        );
        if (token !== state.pollToken) return;
        if (failures) say("");
        failures = 0;
        version = snapshot.version;
        renderSnapshot(snapshot);
      } catch (error) {
        if (signal.aborted || token !== state.pollToken) return;
        failures += 1;
        if (failures > 1) say(t("connection_lost"));
        await sleep(Math.min(5000, 500 * failures));
      }
    }
  }

  function isBot(message) {
    return Boolean(message.from && message.from.is_bot);
  }

  function renderSnapshot(snapshot) {
    const list = $("messages");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 120
      || Date.now() < (state.followUntil || 0);
    const present = new Set();
    let added = false;
    let fromYou = false;
    let botCount = 0;
    for (const message of snapshot.messages) {
      const id = message.message_id;
      present.add(id);
      if (isBot(message)) botCount += 1;
      const sig = JSON.stringify(message) + (state.playable.has(voiceId(message)) ? "+" : "");
      const old = state.rendered.get(id);
      if (old && old.sig === sig) continue;
      const node = renderMessage(message);
      if (old) {
        replacePreservingFocus(old.node, node);
      } else {
        list.append(node);
        added = true;
        if (!isBot(message)) fromYou = true;
        if (!state.firstRender && isBot(message)) announce(describeForAnnouncement(message));
      }
      state.rendered.set(id, { sig, node });
    }
    for (const [id, entry] of state.rendered) {
      if (!present.has(id)) {
        if (entry.node.contains(document.activeElement)) list.focus();
        entry.node.remove();
        state.rendered.delete(id);
      }
    }
    const empty = list.querySelector(".empty");
    if (snapshot.messages.length === 0 && !empty) {
      list.append(el("li", { className: "empty", text: t("empty_chat") }));
    } else if (snapshot.messages.length && empty) {
      empty.remove();
    }
    renderReplyKeyboard(snapshot.reply_keyboard);
    $("blocked-note").hidden = !snapshot.blocked;
    updateInviteCard(snapshot.messages.length);
    showHint(snapshot.messages.length);
    if (state.current) {
      const persona = state.personas.find((p) => p.user_id === state.current.user_id);
      if (persona) persona.bot_messages = botCount;
      state.seen.set(state.current.user_id, botCount);
      updateBadges();
    }
    // Stay at the newest message when the reader was there, and always after they sent one.
    if (added && (nearBottom || fromYou || state.firstRender)) list.scrollTop = list.scrollHeight;
    if (fromYou) state.followUntil = Date.now() + 8000;
    state.firstRender = false;
  }

  // A picture that finishes loading grows its message: stay at the end if we were there.
  function keepAtBottom(event) {
    const list = $("messages");
    const image = event.currentTarget;
    const bottomGap = list.scrollHeight - list.scrollTop - list.clientHeight;
    if (bottomGap < image.clientHeight + 160) list.scrollTop = list.scrollHeight;
  }

  function replacePreservingFocus(oldNode, newNode) {
    const active = document.activeElement;
    const hadFocus = oldNode.contains(active);
    const key = hadFocus && active.dataset ? active.dataset.focusKey : null;
    oldNode.replaceWith(newNode);
    if (!hadFocus) return;
    const again = key ? newNode.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) : null;
    (again || newNode).focus();
  }

  function describeForAnnouncement(message) {
    const text = message.text || message.caption || "";
    if (text) return t("new_message", { text });
    return t("new_media");
  }

  function voiceId(message) {
    return message.voice ? message.voice.file_id : "";
  }

  function formatTime(unixSeconds) {
    return state.formats.short.format(new Date(unixSeconds * 1000));
  }

  function formatSize(bytes) {
    if (bytes < 1024) return t("size_bytes", { size: bytes });
    if (bytes < 1024 * 1024) return t("size_kb", { size: Math.round(bytes / 1024) });
    return t("size_mb", { size: (bytes / (1024 * 1024)).toFixed(1) });
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Number(seconds) || 0);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function fileUrl(fileId, download) {
    return `/control/files/${encodeURIComponent(fileId)}${download ? "?download=1" : ""}`;
  }

  function renderMessage(message) {
    const fromBot = isBot(message);
    const item = el("li", {
      className: `msg ${fromBot ? "msg-bot" : "msg-you"}`,
      "data-message-id": message.message_id,
      tabindex: "-1",
    });
    const bubble = el("div", { className: "bubble" });
    bubble.append(el("span", { className: "visually-hidden", text: `${fromBot ? t("from_bot") : t("from_you")}: ` }));

    if (message.photo && message.photo.length) {
      const photo = message.photo[message.photo.length - 1];
      const figure = el("figure", { className: "media" });
      const alt = fromBot
        ? (message.caption ? t("picture_alt") : t("picture_alt_plain"))
        : t("photo_from_you");
      figure.append(el("img", {
        src: fileUrl(photo.file_id, false), alt,
        width: photo.width > 1 ? photo.width : null,
        height: photo.height > 1 ? photo.height : null,
        onload: keepAtBottom,
      }));
      if (message.caption) {
        const caption = el("figcaption");
        renderRich(caption, message.caption, message.caption_entities || [], fromBot);
        figure.append(caption);
      }
      bubble.append(figure);
    } else if (message.document) {
      const doc = message.document;
      const name = doc.file_name || "file";
      bubble.append(el("a", {
        className: "doc-link",
        href: fileUrl(doc.file_id, true),
        download: name,
        text: t("download", { name, size: formatSize(doc.file_size || 0) }),
      }));
      if (message.caption) {
        const caption = el("p", { className: "text" });
        renderRich(caption, message.caption, message.caption_entities || [], fromBot);
        bubble.append(caption);
      }
    } else if (message.voice) {
      const label = t("voice_note", { duration: formatDuration(message.voice.duration) });
      const box = el("div", { className: "voice" }, el("span", { text: label }));
      if (state.playable.has(message.voice.file_id) || fromBot) {
        box.append(el("audio", { controls: true, preload: "none", src: fileUrl(message.voice.file_id, false), "aria-label": label }));
      }
      bubble.append(box);
      if (message.caption) {
        const caption = el("p", { className: "text" });
        renderRich(caption, message.caption, message.caption_entities || [], fromBot);
        bubble.append(caption);
      }
    } else if (message.sticker) {
      bubble.append(el("p", { className: "text", text: `${message.sticker.emoji || ""} ${t("sticker")}`.trim() }));
    } else {
      const text = el("p", { className: "text" });
      renderRich(text, message.text || "", message.entities || [], fromBot);
      bubble.append(text);
    }

    if (fromBot && (message.text || message.caption || "").startsWith("\u{1F4AC}")) {
      // A partner's relayed message: the connector answers by replying to it.
      const reply = el("button", { className: "reply-to", text: t("reply") });
      reply.addEventListener("click", () => {
        state.replyTo = message.message_id;
        say(t("replying"));
      });
      bubble.append(reply);
    }
    const meta = el("p", { className: "meta" });
    meta.append(el("time", { datetime: new Date(message.date * 1000).toISOString(), text: formatTime(message.date) }));
    if (message.edit_date) meta.append(` · ${t("edited")}`);
    bubble.append(meta);
    item.append(bubble);

    const markup = message.reply_markup && message.reply_markup.inline_keyboard;
    if (fromBot && markup && markup.length) item.append(renderKeyboard(message, markup));
    return item;
  }

  function renderKeyboard(message, rows) {
    const box = el("div", { className: "keyboard", role: "group", "aria-label": shortLabel(message) });
    rows.forEach((row) => {
      const line = el("div", { className: "kb-row" });
      row.forEach((button) => {
        if (button.url) {
          line.append(el("a", {
            className: "kb kb-link", href: button.url, target: "_blank", rel: "noopener noreferrer",
            text: button.text, "data-focus-key": `url:${button.url}`,
          }));
        } else if (button.callback_data !== undefined) {
          line.append(el("button", {
            type: "button",
            className: "kb",
            text: button.text,
            "data-focus-key": `cb:${button.callback_data}`,
            onclick: (event) => press(message.message_id, button.callback_data, event.currentTarget),
          }));
        } else {
          line.append(el("button", { type: "button", className: "kb", text: button.text, disabled: true }));
        }
      });
      box.append(line);
    });
    return box;
  }

  function shortLabel(message) {
    const text = (message.text || message.caption || "").split("\n").find((line) => line.trim()) || "";
    return text.length > 80 ? `${text.slice(0, 77)}…` : text;
  }

  function renderReplyKeyboard(markup) {
    const box = $("reply-keyboard");
    box.replaceChildren();
    const rows = markup && markup.keyboard;
    box.hidden = !rows || !rows.length;
    if (box.hidden) return;
    for (const row of rows) {
      const line = el("div", { className: "kb-row" });
      for (const button of row) {
        const text = typeof button === "string" ? button : button.text;
        line.append(el("button", { type: "button", className: "kb", text, onclick: () => sendText(text) }));
      }
      box.append(line);
    }
  }

  // Telegram's entities (UTF-16 offsets, which is what JavaScript strings count) as elements.
  function commandEntities(text) {
    const out = [];
    const pattern = /(^|\s)(\/[A-Za-z0-9_]{1,32})/g;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      const offset = match.index + match[1].length;
      out.push({ type: "bot_command", offset, length: match[2].length });
    }
    return out;
  }

  function entityNode(entity, piece, interactive) {
    switch (entity.type) {
      case "bold": return el("strong");
      case "italic": return el("em");
      case "underline": return el("u");
      case "strikethrough": return el("s");
      case "spoiler": return el("span", { className: "spoiler", tabindex: "0" });
      case "code": return el("code");
      case "pre": return el("pre");
      case "blockquote":
      case "expandable_blockquote": return el("blockquote");
      case "text_link":
        return el("a", { href: entity.url, target: "_blank", rel: "noopener noreferrer" });
      case "url": {
        const href = /^[a-z]+:\/\//i.test(piece) ? piece : `https://${piece}`;
        return el("a", { href, target: "_blank", rel: "noopener noreferrer" });
      }
      case "bot_command":
        if (!interactive) return el("span");
        return el("button", {
          type: "button", className: "cmd", "data-focus-key": `cmd:${piece}`,
          onclick: () => sendText(piece),
        });
      default: return el("span");
    }
  }

  function renderRich(target, text, entities, interactive) {
    target.replaceChildren();
    const sorted = [...entities].sort((a, b) => a.offset - b.offset || b.length - a.length);
    let index = 0;
    const build = (parent, start, end) => {
      let position = start;
      while (index < sorted.length && sorted[index].offset < end) {
        const entity = sorted[index];
        index += 1;
        if (entity.offset < position) continue; // overlapping: keep the first
        const stop = Math.min(entity.offset + entity.length, end);
        if (entity.offset > position) parent.append(text.slice(position, entity.offset));
        const node = entityNode(entity, text.slice(entity.offset, stop), interactive);
        build(node, entity.offset, stop);
        parent.append(node);
        position = stop;
      }
      if (position < end) parent.append(text.slice(position, end));
    };
    build(target, 0, text.length);
  }

  // ---------------------------------------------------------------- acting as the person
  function userPath(action) {
    return `/control/users/${state.current.user_id}/${action}`;
  }

  async function send(action, body) {
    if (!state.current) return null;
    try {
      return await api(userPath(action), { method: "POST", body });
    } catch (error) {
      say(t("sent_failed", { reason: error.message }));
      return null;
    }
  }

  async function sendText(raw) {
    const text = raw.trim();
    if (!text || !state.current) return;
    const command = /^\/([A-Za-z0-9_]{1,32})(?:@\S+)?(?:\s+([\s\S]*))?$/.exec(text);
    if (command) {
      await send("command", { command: command[1], payload: command[2] ? command[2].trim() : null });
    } else {
      const body = { text };
      if (state.replyTo) body.reply_to = state.replyTo;
      state.replyTo = null;
      await send("text", body);
    }
  }

  async function press(messageId, data, button) {
    if (button) button.setAttribute("aria-busy", "true");
    const result = await send("press", { message_id: messageId, data });
    if (!result) {
      if (button) button.removeAttribute("aria-busy");
      return;
    }
    const queryId = result.update.callback_query.id;
    for (let i = 0; i < 20; i += 1) {
      await sleep(200);
      try {
        const answer = await api(`/control/callbacks/${encodeURIComponent(queryId)}`);
        if (answer.answered) {
          if (answer.text) toast(answer.text);
          break;
        }
      } catch (error) {
        break;
      }
    }
    if (button && button.isConnected) button.removeAttribute("aria-busy");
  }

  // What to try as this person; a new person who has joined is a partner like the others.
  function showHint(messageCount) {
    const persona = state.current;
    if (!persona) return;
    const joined = persona.kind === "newcomer" && messageCount > 0;
    const hint = joined ? t("hint_partner") : persona.hint;
    const node = $("chat-hint");
    if (node.dataset.hint === hint) return;
    node.dataset.hint = hint;
    renderRich(node, hint, commandEntities(hint), true);
  }

  function updateInviteCard(messageCount) {
    const card = $("invite-card");
    const persona = state.current;
    const show = Boolean(persona && persona.kind === "newcomer" && persona.invite_code && messageCount === 0);
    card.hidden = !show;
    if (!show) return;
    $("invite-intro").textContent = t("invite_intro", { name: persona.name });
    $("invite-link").textContent = persona.invite_link;
  }

  async function openInvite() {
    const persona = state.current;
    if (!persona || !persona.invite_code) return;
    await send("command", { command: "start", payload: persona.invite_code });
    $("composer-text").focus();
  }

  // Voice notes: recorded where the browser allows it, otherwise a made-up clip.
  async function sendSampleVoice(fallback) {
    const seconds = 5;
    const result = await send("voice", { duration: seconds });
    if (result && fallback) say(t("voice_fallback", { seconds }));
  }

  function blobToBase64(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  async function toggleRecording() {
    const button = $("voice-record");
    if (state.recorder) {
      state.recorder.stop();
      return;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || typeof MediaRecorder === "undefined") {
      await sendSampleVoice(true);
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      await sendSampleVoice(true);
      return;
    }
    const types = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus", "audio/webm"];
    const mimeType = types.find((type) => MediaRecorder.isTypeSupported(type));
    const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    const chunks = [];
    const started = Date.now();
    recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
    recorder.addEventListener("stop", async () => {
      stream.getTracks().forEach((track) => track.stop());
      state.recorder = null;
      button.textContent = t("voice_record");
      const duration = Math.max(1, Math.round((Date.now() - started) / 1000));
      const data = await blobToBase64(new Blob(chunks, { type: recorder.mimeType }));
      const result = await send("voice", { duration, data_base64: data });
      if (result) {
        state.playable.add(result.update.message.voice.file_id);
        say("");
      }
    });
    state.recorder = recorder;
    recorder.start();
    button.textContent = t("voice_stop");
    say(t("voice_recording"));
  }

  // The command menu the bot published (setMyCommands), as Telegram's "Menu" button shows it.
  async function refreshMenu() {
    try {
      const sandbox = await api("/control/state");
      const list = $("menu-list");
      list.replaceChildren();
      for (const command of sandbox.commands || []) {
        const label = `/${command.command} · ${command.description}`;
        list.append(el("li", {}, el("button", {
          type: "button",
          text: label,
          onclick: () => { $("menu").open = false; sendText(`/${command.command}`); $("composer-text").focus(); },
        })));
      }
    } catch (error) {
      /* shown by the chat's own loop */
    }
  }

  // ---------------------------------------------------------------- the clock
  function renderClock(clock) {
    state.clockBase = { server: Date.parse(clock.now), local: Date.now() };
    state.nextDue = clock.next;
    paintClock();
  }

  function paintClock() {
    if (!state.clockBase) return;
    const now = new Date(state.clockBase.server + (Date.now() - state.clockBase.local));
    $("clock-now").textContent = t("clock_now", { time: state.formats.long.format(now) });
    const next = state.nextDue;
    $("clock-next").textContent = next
      ? t("clock_next", { what: next.what, time: state.formats.short.format(new Date(next.due_at)) })
      : t("clock_nothing");
  }

  async function refreshClock() {
    try {
      renderClock(await api("/demo/clock"));
    } catch (error) {
      /* shown by the chat's own loop */
    }
  }

  async function moveClock(step) {
    const buttons = document.querySelectorAll("[data-step]");
    buttons.forEach((b) => { b.disabled = true; });
    say(t("clock_moving"), "clock-status");
    try {
      const clock = await api("/demo/clock", { method: "POST", body: { step } });
      renderClock(clock);
      say(clock.moved
        ? t("clock_moved", { time: state.formats.long.format(new Date(clock.now)) })
        : t("clock_not_moved"), "clock-status");
    } catch (error) {
      say(t("sent_failed", { reason: error.message }), "clock-status");
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // ---------------------------------------------------------------- start
  async function load() {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await api("/demo/page.json");
      } catch (error) {
        // 503 while the demo is starting; anything else (the sandbox alone, without the
        // demo's routes) will not get better by waiting
        if (error.status !== 503 || attempt > 60) throw error;
        await sleep(500);
      }
    }
  }

  async function main() {
    try {
      state.data = await load();
    } catch (error) {
      say(String(error.message || error));
      return;
    }
    state.strings = state.data.strings;
    state.personas = state.data.personas;
    for (const p of state.personas) state.seen.set(p.user_id, p.bot_messages);
    applyStrings();
    renderPersonas();

    $("composer").addEventListener("submit", async (event) => {
      event.preventDefault();
      const box = $("composer-text");
      const text = box.value;
      box.value = "";
      await sendText(text);
    });
    $("composer-text").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("open-invite").addEventListener("click", openInvite);
    $("voice-record").addEventListener("click", toggleRecording);
    $("voice-sample").addEventListener("click", () => sendSampleVoice(false));
    $("menu").addEventListener("toggle", () => { if ($("menu").open) refreshMenu(); });
    $("add-newcomer").addEventListener("click", async () => {
      try {
        const persona = await api("/demo/personas", { method: "POST" });
        persona.bot_messages = 0;
        state.personas.push(persona);
        state.seen.set(persona.user_id, 0);
        renderPersonas();
        choose(persona.user_id, true);
      } catch (error) {
        say(t("sent_failed", { reason: error.message }));
      }
    });
    for (const button of document.querySelectorAll("[data-step]")) {
      button.addEventListener("click", () => moveClock(button.dataset.step));
    }

    const wanted = Number((/user=(\d+)/.exec(location.hash) || [])[1]);
    const first = state.personas.find((p) => p.user_id === wanted)
      || state.personas.find((p) => p.kind === "partner")
      || state.personas[0];
    if (first) choose(first.user_id, false);
    await refreshClock();
    setInterval(paintClock, 15000);
    setInterval(refreshClock, 20000);
    setInterval(refreshPersonas, 2500);
    document.body.dataset.ready = "true";
  }

  main();
})();
