"""MedGradeTrainLib: cohort in -> trained, registered model out; job launching; the ``medgrade`` CLI."""
