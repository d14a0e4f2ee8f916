"""The moderation log named conversations by their titles (their owners' words): by number
from now on, and for what it logged before."""

from django.db import migrations
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat


def by_number(apps, schema_editor):
    ModerationAction = apps.get_model("moderation", "ModerationAction")
    number = Cast("target_id", output_field=ModerationAction._meta.get_field("target"))
    ModerationAction.objects.filter(target_type="conversation").update(
        target=Concat(Value("Conversation "), number, output_field=CharField())
    )
    # The admin's own log of deletions, shown under "Recent actions".
    LogEntry = apps.get_model("admin", "LogEntry")
    LogEntry.objects.filter(
        content_type__app_label="conversations", content_type__model="conversation"
    ).update(object_repr=Concat(Value("Conversation "), "object_id", output_field=CharField()))


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0004_api_keys_moderators"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(by_number, migrations.RunPython.noop)]
