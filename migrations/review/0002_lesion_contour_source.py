"""Lesion.contour_source: where a lesion's contour comes from, so that keeping it again
(after a reject, or an undone decision) restores the right decision."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def backfill(apps: Any, schema_editor: Any) -> None:
    Lesion = apps.get_model("review", "Lesion")
    Lesion.objects.filter(decision="edited").update(contour_source="edited")
    Lesion.objects.filter(decision="added").update(contour_source="drawn")
    Lesion.objects.filter(model_version__isnull=True).exclude(
        decision__in=("edited", "added")
    ).update(contour_source="imported")


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="lesion",
            name="contour_source",
            field=models.CharField(
                choices=[
                    ("model", "Model"),
                    ("edited", "Edited"),
                    ("drawn", "Drawn"),
                    ("imported", "Imported"),
                ],
                default="model",
                max_length=16,
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
