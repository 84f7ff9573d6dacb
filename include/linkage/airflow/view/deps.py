"""What the Linkage view's routes depend on: the signed-in user, whether Airflow lets them decide, the engine
handle, a checked review filter.

Who may decide is Airflow's to say, not the view's: recording a decision (the form, the JSON API, the CSV
upload, accepting suggestions) is asking for a write to the app, so it needs what triggering
`linkage_apply_decisions` needs (`POST` on its DAG runs, as Airflow's auth manager answers it: a
Viewer may not; SimpleAuthManager's `user` role and up, or whatever a FAB/Keycloak role grants). A
user who may not still reads the queue; a decision they send is refused with 403 and nothing is recorded.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException, Query

from linkage.core.models import REVIEW_CATEGORIES, Category
from linkage.relations import REGISTRY
from linkage.review.pages import ReviewFilter
from linkage.run.session import Linkage
from linkage.store.review_queue import CATEGORIES, OPEN, STATUSES

__all__ = ["DeciderDep", "FilterDep", "LinkageDep", "UserDep", "get_user", "linkage", "may_decide", "review_filter"]
#: The DAG whose run permission is the permission to decide (a decision is what its runs write).
DECIDING_DAG = "linkage_apply_decisions"


@functools.cache
def _linkage(uri: str, db: str) -> Linkage:
    """One engine handle per database the connection names, kept for the api-server's lifetime (its
    MongoClient pools connections for every request); the review queue's key is given to items older
    than it, once."""
    from linkage.airflow.connection import open_linkage

    lk = open_linkage()
    lk.reviews.ensure_indexes()
    lk.decisions.ensure_indexes()
    return lk


def linkage() -> Linkage:
    """The engine on `mongo_default` as it is configured now (an edited connection takes effect)."""
    from linkage.airflow.connection import connection_target

    return _linkage(*connection_target())


def _refused(detail: str) -> HTTPException:
    return HTTPException(status_code=422, detail=detail)


def probability(text: str | None) -> float | None:
    """A minimum probability as a form sends it: empty for none, else a number from 0 to 1."""
    if not text or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise _refused(f"min_probability {text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise _refused(f"min_probability is a probability, 0 to 1, not {value:g}")
    return value


def review_filter(step: Annotated[str | None, Query(max_length=100)] = None,
                  category: Annotated[str | None, Query(max_length=100)] = None,
                  status_: Annotated[str | None, Query(alias="status", max_length=20)] = OPEN,
                  min_probability: Annotated[str | None, Query(max_length=20)] = None) -> ReviewFilter:
    """The review queue's filter: a registered step, a review category, a status (each empty: any, as the
    form sends "any"), a minimum probability of the suggestion (empty: any item, suggested or not); anything
    else is refused, not matched against nothing."""
    if step and step not in REGISTRY:
        raise _refused(f"unknown step {step!r}: choose from {', '.join(REGISTRY)}")
    if category and category not in REVIEW_CATEGORIES:
        raise _refused(f"{category!r} is not a review category: choose from {', '.join(CATEGORIES)}")
    if status_ and status_ not in STATUSES:
        raise _refused(f"unknown status {status_!r}: choose from {', '.join(STATUSES)}")
    return ReviewFilter(step=step or None, category=Category(category) if category else None, status=status_ or None,
                        min_probability=probability(min_probability))


def may_decide(user: Any) -> bool:
    """Whether Airflow's auth manager lets `user` trigger `linkage_apply_decisions` (so: decide)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                     details=DagDetails(id=DECIDING_DAG), user=user))


def deciding_user(user: Annotated[Any, Depends(get_user)]) -> Any:
    """The signed-in user, when Airflow lets them decide; 403 otherwise (before anything is read or recorded)."""
    if not may_decide(user):
        raise HTTPException(status_code=403, detail=f"{user.get_name()} may read the review queue but not decide: "
                                                    f"deciding needs permission to trigger {DECIDING_DAG}")
    return user


LinkageDep = Annotated[Linkage, Depends(linkage)]
FilterDep = Annotated[ReviewFilter, Depends(review_filter)]
UserDep = Annotated[Any, Depends(get_user)]
#: The signed-in user who may decide (403 for one who may not): every route that records a decision takes it.
DeciderDep = Annotated[Any, Depends(deciding_user)]
