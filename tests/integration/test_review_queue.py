"""The review queue's pages and counts come from one ordered key (issue 23 item 7): walking every page of a
filter forwards or backwards gives exactly the items the filter selects, in order, each once; the counts are
the database's; an item written before the key existed gets it."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timezone

from bson import ObjectId

from linkage.core.models import Category, Ruling
from linkage.relations import REGISTRY
from linkage.review.pages import ReviewFilter, review_page
from linkage.run.session import Linkage
from linkage.store.review_key import FIELD, queue_key
from linkage.store.review_queue import CATEGORIES, STATUSES, item_document


def plant(lk: Linkage, n: int, seed: int = 3) -> list[dict]:
    """`n` items of every status, step and category, in random proportions."""
    rng, now = random.Random(seed), datetime.now(timezone.utc)
    docs = []
    for _ in range(n):
        step, category, status = rng.choice(list(REGISTRY)), rng.choice(CATEGORIES), rng.choice(STATUSES)
        doc = item_document("planted", step, "somewhere", Ruling(oid=ObjectId(), app_id="x",
                                                                    category=Category(category)), "link", now)
        docs.append({**doc, "status": status, FIELD: queue_key(status, step, category, doc["_id"])})
    lk.reviews.coll.insert_many(docs)
    lk.reviews.ensure_indexes()
    return docs


def selected_by(docs: list[dict], chosen: ReviewFilter) -> list[str]:
    return sorted(d[FIELD] for d in docs if (chosen.status is None or d["status"] == chosen.status)
                  and (chosen.step is None or d["step"] == chosen.step)
                  and (chosen.category is None or d["category"] == chosen.category))


def test_every_filter_pages_forwards_and_backwards_through_exactly_its_items(lk: Linkage, db) -> None:
    docs = plant(lk, 1234)
    filters = [ReviewFilter(), ReviewFilter(status=None), ReviewFilter(step="user_customer"),
               ReviewFilter(status=None, category=Category.AMBIGUOUS),
               ReviewFilter(status="decided", step="order_delivery", category=Category.DANGLING),
               ReviewFilter(status=None, step="order_delivery")]
    for chosen in filters:
        expected = selected_by(docs, chosen)
        pages, after = [], None
        for _ in itertools.count():
            page = review_page(lk, chosen, size=25, after=after)
            pages.append(page)
            assert page.total == len(expected) and page.first == 1 + 25 * (len(pages) - 1)
            if not (after := page.after):
                break
        assert [row.key for p in pages for row in p.items] == expected, chosen
        backwards, before = [], pages[-1].items[0].key if pages[-1].items else None
        while before:
            page = review_page(lk, chosen, size=25, before=before)
            backwards.insert(0, page)
            before = page.before
        assert [row.key for p in [*backwards, pages[-1]] for row in p.items] == expected, chosen
        counts = review_page(lk, chosen, size=25).counts
        assert counts == {status: len(selected_by(docs, chosen.model_copy(update={"status": status})))
                          for status in STATUSES}


def test_open_counts_and_a_page_size_nobody_offers(lk: Linkage, db) -> None:
    docs = plant(lk, 300, seed=5)
    expected: dict[str, dict[str, int]] = {}
    for d in docs:
        if d["status"] == "open":
            expected.setdefault(d["step"], {}).setdefault(d["category"], 0)
            expected[d["step"]][d["category"]] += 1
    assert lk.reviews.open_counts(REGISTRY) == expected
    assert review_page(lk, ReviewFilter(), size=7).size == 50


def test_items_written_before_the_key_get_it(lk: Linkage, db) -> None:
    lk.reviews.coll.insert_one({"_id": "order_delivery:old", "step": "order_delivery", "category": "ambiguous",
                                "status": "open", "collection": "delivery_statuses", "document_oid": "old"})
    lk.reviews.ensure_indexes()
    assert lk.reviews.coll.find_one({"_id": "order_delivery:old"})[FIELD] == \
        "open|order_delivery|ambiguous|order_delivery:old"
    assert [row.item_id for row in review_page(lk, ReviewFilter()).items] == ["order_delivery:old"]
