// Deciding review items from the Linkage view: one form per item (its candidates as choices, none, clear for a
// dangling link, another id, a note), saved through the view's JSON API as the signed-in user, and an import of
// a filled-in export. Built for a backlog of hundreds from the keyboard: j/k move between items, 1-9 choose a
// candidate, n chooses none, Enter saves and moves to the next item. Everything shown comes back as text, never
// as HTML.
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
  const row = form.closest("tr");
  row.classList.add("status-decided");
  row.querySelector("td.state .badge").textContent = "decided";
  const all = forms();
  focusItem(all[all.indexOf(form) + 1]);
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
        ([k, n]) => `${k} ${n}`).join(", ")}); reload to see them`;
    } else {
      const bad = data.refused ? data.refused.length : 0;
      outcome.textContent = `refused, nothing recorded: ${bad ? `${bad} bad line${bad === 1 ? "" : "s"}` : data.detail}`;
      if (data.refused) showRefusals(list, data.refused);
    }
  });
}
