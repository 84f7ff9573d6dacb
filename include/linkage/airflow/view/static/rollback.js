// Triggers linkage_rollback through Airflow's REST API as the signed-in user (the session cookie),
// then opens the new DAG run in the Airflow UI.
document.getElementById("rollback-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const outcome = document.getElementById("outcome");
  const runId = document.getElementById("run-id").value.trim();
  const call = (method, path, body) => fetch(path, {
    method, credentials: "same-origin", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  outcome.textContent = "Triggering linkage_rollback...";
  const unpaused = await call("PATCH", "/api/v2/dags/linkage_rollback", {is_paused: false});
  const triggered = unpaused.ok
    ? await call("POST", "/api/v2/dags/linkage_rollback/dagRuns", {logical_date: null, conf: {run_id: runId}})
    : unpaused;
  if (!triggered.ok) {
    outcome.textContent = `Airflow refused (${triggered.status}): ${await triggered.text()}`;
    return;
  }
  const run = await triggered.json();
  outcome.textContent = `Triggered ${run.dag_run_id}.`;
  openInAirflow(`/dags/linkage_rollback/runs/${encodeURIComponent(run.dag_run_id)}`);
});
