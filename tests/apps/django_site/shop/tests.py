"""Run by ``manage.py test shop``: records logged inside Django's test runner, one with a
QuerySet as an extra. The test database is SQLite in memory, which only the thread
that made it can see: an extra turned into text later, on another thread, would read
"no such table" (or nothing) instead of the rows."""

import logging

from django.test import TestCase

from .models import Item

log = logging.getLogger("shop.tests")
RECORDS = 5


class ShopTests(TestCase):
    def test_logs_records_with_a_queryset(self) -> None:
        Item.objects.create(name="apple")
        Item.objects.create(name="pear")
        for n in range(RECORDS):
            log.info("test record %d", n, extra={"n": n})
        log.warning("inventory", extra={"items": Item.objects.order_by("name")})

    def test_the_view_logs_too(self) -> None:
        response = self.client.get("/items/7")
        self.assertEqual(response.status_code, 200)
