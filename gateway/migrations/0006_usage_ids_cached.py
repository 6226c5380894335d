"""Each database session takes usage record ids a thousand at a time.

With one id at a time, two usage writers take turns on the sequence's one page for
every row they copy, and append to the same last page of the primary key index:
measured on two cores, that contention cost two writers about a tenth of their
throughput (docs/performance.md, "The write path"). Ids then increase within a
session but interleave between sessions, and a session that ends leaves the rest of
its thousand unused: nothing reads meaning into a usage record's id (pages order by
creation time), and a bigint lasts.
"""

from django.db import migrations

CACHE = 1_000


def _cache(size: int):
    def run(apps, schema_editor) -> None:
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return  # SQLite has no sequences to share
        table = apps.get_model("gateway", "UsageRecord")._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (sequence,) = cursor.fetchone()
            cursor.execute(f"ALTER SEQUENCE {sequence} CACHE {size}")

    return run


class Migration(migrations.Migration):
    dependencies = [("gateway", "0005_usage_fewer_indexes")]

    operations = [migrations.RunPython(_cache(CACHE), _cache(1), elidable=False)]
