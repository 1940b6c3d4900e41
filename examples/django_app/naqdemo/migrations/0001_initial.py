from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.CreateModel(
            name="Sum",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("a", models.IntegerField()),
                ("b", models.IntegerField()),
                ("result", models.IntegerField(null=True)),
            ],
        ),
    ]
