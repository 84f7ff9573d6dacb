"""Suggestions written onto a migrated queue's open items by hand, in the stored shape `linkage.core.evidence` defines
(the `suggest` stage writes the same), so that what a test accepts or sees is known exactly."""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection

from linkage.core.evidence import NONE, Comparison, Evidence, Level, Suggestion, Weight

#: What each planted suggestion's evidence column reads.
EVIDENCE_TEXT = "prior -1.0; status equal +4.5"


def plant_suggestions(reviews: Collection) -> dict[str, dict[str, Any]]:
    """What the `suggest` stage wrote is taken off; then every open ambiguous item gets a suggestion; per item
    id, the suggestion as stored. Probabilities step through 0.5, 0.93, 0.99 and 0.9 exactly; the first
    candidate when no other item was suggested it, else `none`. Each open conflict item gets evidence naming
    the next conflict item of its step as its rival."""
    reviews.update_many({}, {"$unset": {"evidence": "", "suggestion": "", "suggested_p": ""}})  # the stage's own
    taken: set[tuple[str, str]] = set()
    stored: dict[str, dict[str, Any]] = {}
    for n, item in enumerate(reviews.find({"status": "open", "category": "ambiguous"}).sort("_id", 1)):
        first = item["candidates"][0]["id"]
        target = first if (item["step"], first) not in taken and n % 5 else NONE
        taken.add((item["step"], first))
        p = (0.5, 0.93, 0.99, 0.9)[n % 4]
        evidence = Evidence(facts={"status": "delivered"}, candidates={
            c["id"]: [Comparison(field="status", level=Level.EQUAL if c["id"] == target else Level.DIFFERENT),
                      Comparison(field="name", level=Level.SIMILAR, score=0.87)]
            for c in item["candidates"]})
        suggestion = Suggestion(target=target, probability=p, model="fit-test", weights=[
            Weight(field="prior", weight=-1.0), Weight(field="status", level="equal", weight=4.5)])
        stored[item["_id"]] = suggestion.model_dump(mode="json")
        reviews.update_one({"_id": item["_id"]}, {"$set": {
            "evidence": evidence.model_dump(mode="json"), "suggestion": stored[item["_id"]], "suggested_p": p}})
    conflicts = list(reviews.find({"status": "open", "category": "conflict"}).sort("_id", 1))
    for item, rival in zip(conflicts, conflicts[1:] + conflicts[:1], strict=True):
        evidence = Evidence(facts={"role": "customer"}, rivals=[rival["_id"]])
        reviews.update_one({"_id": item["_id"]}, {"$set": {"evidence": evidence.model_dump(mode="json")}})
    assert len(stored) >= 20, "the seed leaves ambiguous items to suggest for"
    return stored
