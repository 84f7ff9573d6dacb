// Links from the Linkage view to Airflow's own pages. Airflow shows the view in a sandboxed frame that
// may not navigate the window, but the frame is same-origin: ask Airflow's router to show the page
// (a history entry plus the popstate event it listens to); outside a frame, just go there.
function openInAirflow(url) {
  const airflow = window.parent;
  if (airflow !== window && airflow.location.origin === window.location.origin) {
    airflow.history.pushState({}, "", url);
    airflow.dispatchEvent(new PopStateEvent("popstate", {state: {}}));
  } else {
    window.location.href = url;
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a.airflow");
  if (link) {
    event.preventDefault();
    openInAirflow(link.getAttribute("href"));
  }
});
