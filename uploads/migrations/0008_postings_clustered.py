import django.db.models.deletion
from django.db import migrations, models

COLUMNS = "term, file_id, passage_id, count, length"


def set_aside(apps, schema_editor):
    """The postings, kept while their table is made again (a copy, not an index to rebuild)."""
    schema_editor.execute(
        f"CREATE TABLE uploads_posting_aside AS SELECT {COLUMNS} FROM uploads_posting"
    )


def put_back(apps, schema_editor):
    schema_editor.execute(
        f"INSERT INTO uploads_posting ({COLUMNS}) SELECT {COLUMNS} FROM uploads_posting_aside"
        " ORDER BY term, file_id, passage_id"
    )
    schema_editor.execute("DROP TABLE uploads_posting_aside")


def lay_out(apps, schema_editor):
    """The postings' table is the search index itself: SQLite keeps its rows in the key's
    order (WITHOUT ROWID, which Django does not write), PostgreSQL keeps the count and length
    in the key's index, so that a search reads the index alone. The table is empty here."""
    vendor = schema_editor.connection.vendor
    posting = apps.get_model("uploads", "Posting")
    if vendor == "sqlite":
        sql, params = schema_editor.table_sql(posting)
        schema_editor.execute("DROP TABLE uploads_posting")
        # Its index on the file is still to come (Django creates indexes last).
        schema_editor.execute(f"{sql} WITHOUT ROWID", params)
    elif vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE uploads_posting DROP CONSTRAINT uploads_posting_pkey,"
            " ADD CONSTRAINT uploads_posting_pkey"
            " PRIMARY KEY (term, file_id, passage_id) INCLUDE (count, length)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("uploads", "0007_passage_vectors"),
    ]

    operations = [
        migrations.RunPython(set_aside, put_back),
        migrations.DeleteModel(name="Posting"),
        migrations.CreateModel(
            name="Posting",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "term",
                        "file",
                        "passage",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("term", models.CharField(max_length=40)),
                (
                    "file",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="uploads.uploadedfile",
                    ),
                ),
                (
                    "passage",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="uploads.passage",
                    ),
                ),
                ("count", models.PositiveIntegerField()),
                ("length", models.PositiveIntegerField()),
            ],
            options={
                "indexes": [models.Index(fields=["file"], name="uploads_posting_file")],
            },
        ),
        migrations.RunPython(lay_out, migrations.RunPython.noop),
        migrations.RunPython(put_back, set_aside),
    ]
