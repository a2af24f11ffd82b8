"""The table of the database cache (settings.CACHES without REDIS_URL), so that `migrate`
is all a fresh database needs: the API throttles count in it across worker processes."""

from django.db import migrations

TABLE = "django_cache"


def create_cache_table(apps, schema_editor):
    # What `manage.py createcachetable` builds, on the migration's own connection; skipped
    # when a database already has it (one made by createcachetable before this migration).
    connection = schema_editor.connection
    if TABLE in connection.introspection.table_names():
        return
    from django.core.management.commands.createcachetable import Command

    command = Command()
    command.verbosity = 0
    command.create_table(connection.alias, TABLE, dry_run=False)


def drop_cache_table(apps, schema_editor):
    if TABLE in schema_editor.connection.introspection.table_names():
        schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("annotate", "0007_lens_result")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
