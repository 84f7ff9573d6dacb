// Deciding review items from the Linkage view: one form per item (its candidates as choices, none, clear for a
// dangling link, another id, a note), saved through the view's JSON API as the signed-in user, and an import of
// a filled-in export. Built for a backlog of hundreds from the keyboard: j/k move between items, a accepts the
// item's suggestion and moves on, 1-9 choose a candidate, n chooses none, Enter saves and moves to the next
// item. "Accept all N suggestions" records a filter's suggestions at once. After each the counters are asked
// again. Everything shown comes back as text, never as HTML.
const prefix = document.body.dataset.prefix;
const forms = () => Array.from(document.querySelectorAll("form.decide"));

function focusItem(form) {
  if (!form) return;
  const first = form.querySelector("input[type=radio]:checked") || form.querySelector("input[type=radio]");
  first.focus();
  form.closest("tr").scrollIntoView({block: "nearest"});
}

function chosen(form) {
  const picked = form.querySelector("input[name=decision]:checked");
  if (!picked) return "";
  return picked.classList.contains("other") ? form.querySelector("input[name=other]").value.trim() : picked.value;
}

function showRefusals(list, refused) {
  list.replaceChildren(...refused.map((r) => {
    const li = document.createElement("li");
    li.textContent = r.line ? `line ${r.line}: ${r.reason}` : r.reason;
    return li;
  }));
}

async function post(path, body, type) {
  const answer = await fetch(prefix + path, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": type}, body});
  let data = {};
  try { data = await answer.json(); } catch (e) { data = {detail: `${answer.status}`}; }
  return {ok: answer.ok, data};
}

async function save(form) {
  const outcome = form.querySelector(".outcome");
  const decision = chosen(form);
  if (!decision) { outcome.textContent = "choose a candidate, none, or give an id"; return; }
  outcome.textContent = "saving...";
  const note = form.querySelector("input[name=note]").value.trim();
  const {ok, data} = await post("/api/decisions", JSON.stringify(
    {via: "view", decisions: [{item_id: form.dataset.item, decision, note: note || null}]}), "application/json");
  if (!ok) {
    outcome.textContent = data.refused ? data.refused.map((r) => r.reason).join("; ") : (data.detail || "refused");
    outcome.classList.add("warn");
    return;
  }
  outcome.classList.remove("warn");
  outcome.textContent = "saved";
  markDecided(form.closest("tr"));
  const all = forms();
  focusItem(all[all.indexOf(form) + 1]);
  refreshCounts();
}

function markDecided(row) {
  row.classList.add("status-decided");
  row.querySelector("td.state .badge").textContent = "decided";
}

// The counters of the filter shown (open, decided, resolved, the total, the share closed), asked again.
async function refreshCounts() {
  const progress = document.getElementById("progress");
  if (!progress) return;
  const answer = await fetch(`${prefix}/api/review/counts?${progress.dataset.query}`, {credentials: "same-origin"});
  if (!answer.ok) return;
  const {counts, total} = await answer.json();
  for (const [status, n] of Object.entries(counts)) {
    const shown = progress.querySelector(`[data-count="${status}"]`);
    if (shown) shown.textContent = n.toLocaleString("en-US");
  }
  document.getElementById("review-total").textContent = `${total.toLocaleString("en-US")} item${total === 1 ? "" : "s"}`;
  const all = Object.values(counts).reduce((a, b) => a + b, 0);
  document.getElementById("closed").textContent =
    all ? `${(100 * (counts.decided + counts.resolved) / all).toFixed(1)}% closed` : "";
}

// Key a: the focused item's suggestion chosen and saved (the form then moves to the next item).
function acceptSuggested(form) {
  const suggested = form.dataset.suggested;
  const outcome = form.querySelector(".outcome");
  if (!suggested) { outcome.textContent = "no suggestion for this item"; return; }
  const choice = Array.from(form.querySelectorAll("input[name=decision]")).find((c) => c.value === suggested);
  if (choice) {
    choice.checked = true;
  } else {
    form.querySelector("input[name=other]").value = suggested;
    form.querySelector("input.other").checked = true;
  }
  form.requestSubmit();
}

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form.decide");
  if (form) { event.preventDefault(); save(form); }
});

document.addEventListener("input", (event) => {
  if (event.target.name === "other") {
    event.target.closest("form").querySelector("input.other").checked = true;
  }
});

document.addEventListener("keydown", (event) => {
  const form = event.target.closest && event.target.closest("form.decide");
  const typing = event.target.type === "text";
  if (form && event.key === "Enter" && event.target.type === "radio") {
    event.preventDefault();
    form.requestSubmit();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const all = forms();
  const here = form ? all.indexOf(form) : -1;
  if (event.key === "j" || event.key === "k") {
    event.preventDefault();
    focusItem(all[Math.max(0, Math.min(all.length - 1, here + (event.key === "j" ? 1 : -1)))]);
  } else if (form && /^[1-9]$/.test(event.key)) {
    const choice = form.querySelectorAll("label.choice input[type=radio]")[Number(event.key) - 1];
    if (choice && choice.value && choice.value !== "none" && choice.value !== "clear") { choice.checked = true; choice.focus(); }
  } else if (form && event.key === "a") {
    event.preventDefault();
    acceptSuggested(form);
  } else if (form && event.key === "n") {
    const none = form.querySelector("input[value=none]");
    none.checked = true;
    none.focus();
  }
});

const importForm = document.getElementById("import-form");
if (importForm) {
  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const outcome = document.getElementById("import-outcome");
    const list = document.getElementById("import-refused");
    const file = document.getElementById("import-file").files[0];
    list.replaceChildren();
    if (!file) { outcome.textContent = "choose a file first"; return; }
    outcome.textContent = `importing ${file.name}...`;
    const {ok, data} = await post("/api/decisions.csv", file, "text/csv");
    if (ok) {
      outcome.textContent = `recorded ${data.decided} decision${data.decided === 1 ? "" : "s"} (${Object.entries(data.by_kind).map(
        ([k, n]) => `${k} ${n}`).join(", ")})${data.unchanged ? `, ${data.unchanged} row${data.unchanged === 1 ? "" : "s"} `
        + "as decided already" : ""}; reload to see them`;
      refreshCounts();
    } else {
      const bad = data.refused ? data.refused.length : 0;
      outcome.textContent = `refused, nothing recorded: ${bad ? `${bad} bad line${bad === 1 ? "" : "s"}` : data.detail}`;
      if (data.refused) showRefusals(list, data.refused);
    }
  });
}

// "Accept all N suggestions": the filter and the count shown go to the server, which refuses (409) a filter
// that holds another number now.
const acceptAll = document.getElementById("accept-all");
if (acceptAll) {
  acceptAll.addEventListener("click", async () => {
    const outcome = document.getElementById("accept-outcome");
    const {step, category, minProbability, expected} = acceptAll.dataset;
    acceptAll.disabled = true;
    outcome.classList.remove("warn");
    outcome.textContent = `accepting ${Number(expected).toLocaleString("en-US")} suggestions...`;
    const {ok, data} = await post("/api/suggestions/accept", JSON.stringify({step: step || null,
      category: category || null, min_probability: Number(minProbability), expected: Number(expected)}),
      "application/json");
    const list = document.getElementById("accept-refused");
    list.replaceChildren();
    if (!ok) {
      acceptAll.disabled = false;
      outcome.classList.add("warn");
      const bad = data.refused ? data.refused.length : 0;
      outcome.textContent = bad ? `refused, nothing recorded: ${bad} suggestion${bad === 1 ? "" : "s"} cannot be taken now`
        : `nothing recorded: ${data.detail}${data.held !== undefined ? " (press Show to see the filter again)" : ""}`;
      if (bad) {
        list.replaceChildren(...data.refused.slice(0, 20).map((r) => {
          const li = document.createElement("li");
          li.textContent = r.item_id ? `item ${r.item_id}: ${r.reason}` : r.reason;
          return li;
        }));
        if (bad > 20) list.append(Object.assign(document.createElement("li"), {textContent: `and ${bad - 20} more`}));
      }
      return;
    }
    const kinds = Object.entries(data.by_kind).map(([k, n]) => `${k} ${n.toLocaleString("en-US")}`).join(", ");
    outcome.textContent = `recorded ${data.decided.toLocaleString("en-US")} decision${data.decided === 1 ? "" : "s"} `
      + `(${kinds}) as yours; they wait for another person's approval`
      + (data.left ? `; ${data.left.toLocaleString("en-US")} more hold this filter: accept again` : "");
    acceptAll.textContent = `Accepted ${data.decided.toLocaleString("en-US")} suggestion${data.decided === 1 ? "" : "s"}`;
    document.querySelectorAll("tr.item.status-open form.decide[data-suggested]").forEach((f) => markDecided(f.closest("tr")));
    refreshCounts();
  });
}

// The quality of the suggestions, asked for when a person opens its table (it walks the suggested items).
const qualityBox = document.getElementById("quality");
if (qualityBox) {
  qualityBox.addEventListener("toggle", async () => {
    if (!qualityBox.open || qualityBox.dataset.loaded) return;
    const answer = await fetch(`${prefix}/api/quality`, {credentials: "same-origin"});
    if (!answer.ok) return;
    const found = await answer.json();
    qualityBox.dataset.loaded = "1";
    const share = (v) => (v === null || v === undefined ? "-" : `${(100 * v).toFixed(1)}%`);
    const fill = (body, rows) => body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.replaceChildren(...cells.map((text) => { const td = document.createElement("td"); td.textContent = text; return td; }));
      return tr;
    }));
    fill(qualityBox.querySelector(".quality-bands tbody"), found.bands.map((b) =>
      [b.label, b.decided.toLocaleString("en-US"), b.accepted.toLocaleString("en-US"), share(b.rate)]));
    const note = qualityBox.querySelector(".quality-note");
    if (found.accuracy) {
      const table = qualityBox.querySelector(".quality-accuracy");
      table.hidden = false;
      fill(table.querySelector("tbody"), found.accuracy.map((a) => [`p ≥ ${a.threshold}`, a.tp.toLocaleString("en-US"),
        a.fp.toLocaleString("en-US"), share(a.precision), share(a.recall), share(a.recall_evident)]));
      note.textContent = `Against the truth the seed planted: ${found.truth_items.toLocaleString("en-US")} items, `
        + `${found.evident_items.toLocaleString("en-US")} of them evident.`;
    } else {
      note.textContent = "No known truth here (linkage seed plants one): precision and recall are not measured.";
    }
  });
}
