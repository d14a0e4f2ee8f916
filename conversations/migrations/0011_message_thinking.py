from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("conversations", "0010_answer_lease")]

    operations = [
        # One name for one idea: what Kimi thinks is "thinking" everywhere (conversations/parts.py).
        migrations.RenameField("message", "reasoning", "thinking"),
    ]
