"""The usage ledger and token quotas move here from the moderation app: conversations (below
moderation) record and check them. The rows, their permissions and the Moderators group's
grants stay as they were; only the tables and content types take the new app's name."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ["usage", "tokenquota"]


def move_content_types(apps, schema_editor, source="moderation", target="accounts"):
    # Their permissions (and the groups and users holding them) follow the content type.
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label=source, model__in=MOVED).update(app_label=target)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, source="accounts", target="moderation")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("moderation", "0002_moderators_group"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="TokenQuota",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("daily_tokens", models.PositiveBigIntegerField(help_text="Prompt and completion tokens together; 0 for no limit.", verbose_name="tokens a day")),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="token_quota", to=settings.AUTH_USER_MODEL, verbose_name="user")),
                    ],
                    options={
                        "verbose_name": "token quota",
                        "verbose_name_plural": "token quotas",
                        "db_table": "moderation_tokenquota",
                    },
                ),
                migrations.CreateModel(
                    name="Usage",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("day", models.DateField(verbose_name="day")),
                        ("model", models.CharField(max_length=100, verbose_name="model")),
                        ("messages", models.PositiveIntegerField(default=0, verbose_name="answers")),
                        ("prompt_tokens", models.PositiveBigIntegerField(default=0, verbose_name="prompt tokens")),
                        ("completion_tokens", models.PositiveBigIntegerField(default=0, verbose_name="completion tokens")),
                        ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="usage", to=settings.AUTH_USER_MODEL, verbose_name="user")),
                    ],
                    options={
                        "verbose_name": "usage",
                        "verbose_name_plural": "usage",
                        "ordering": ["-day", "user_id", "model"],
                        "db_table": "moderation_usage",
                        "indexes": [models.Index(fields=["day"], name="moderation__day_94d1b2_idx")],
                        "constraints": [models.UniqueConstraint(fields=("user", "day", "model"), name="one_usage_row")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
        migrations.AlterModelTable(name="tokenquota", table=None),
        migrations.AlterModelTable(name="usage", table=None),
        migrations.RenameIndex(model_name="usage", new_name="usage_day_idx", old_name="moderation__day_94d1b2_idx"),
    ]
