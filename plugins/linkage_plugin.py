"""The Linkage plugin: what Airflow loads from this project (the code lives in `linkage.airflow`).

- the Linkage view (a FastAPI app at `/linkage`, in the navigation under Browse),
  which also serves each run's Data Docs;
- the listener that copies each linkage run's summary onto its DAG run as the note;
- the nightly schedule's timetable, which names its timezone wherever it is shown.
"""

from airflow.plugins_manager import AirflowPlugin

from linkage.airflow import notes
from linkage.airflow.schedule import LocalCronTimetable
from linkage.airflow.urls import PREFIX
from linkage.airflow.view import app


class LinkagePlugin(AirflowPlugin):
    name = "linkage"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "Linkage"}]
    external_views = [{"name": "Linkage", "href": f"{PREFIX.lstrip('/')}/", "url_route": "linkage",
                       "destination": "nav", "nav_top_level": True}]
    listeners = [notes]
    timetables = [LocalCronTimetable]
