import django.db.models.deletion
from django.db import migrations, models


def drop_full_text_index(apps, schema_editor):
    """Passages are now found by BM25 over postings kept in a table of their own, the same on
    every database: the database's own full-text index goes, and so do the passages indexed
    with it (with terms analysed the old way). A file without passages gets them again when
    next asked about (retrieval.select)."""
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for name in ("uploads_passage_ai", "uploads_passage_ad", "uploads_passage_au"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
        schema_editor.execute("DROP TABLE IF EXISTS uploads_passage_fts")
    elif vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS uploads_passage_terms_fts")
        schema_editor.execute("ALTER TABLE uploads_passage DROP COLUMN IF EXISTS terms_tsv")
    apps.get_model("uploads", "Passage").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("uploads", "0004_names_without_control_characters"),
    ]

    operations = [
        migrations.RunPython(drop_full_text_index, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="passage",
            name="terms",
        ),
        migrations.AddField(
            model_name="passage",
            name="length",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.CreateModel(
            name="Posting",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("term", models.CharField(max_length=40)),
                ("count", models.PositiveIntegerField()),
                ("length", models.PositiveIntegerField()),
                (
                    "file",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="uploads.uploadedfile",
                    ),
                ),
                (
                    "passage",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="postings",
                        to="uploads.passage",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["term", "file", "passage", "count", "length"],
                        name="uploads_posting_search",
                    )
                ],
            },
        ),
    ]
