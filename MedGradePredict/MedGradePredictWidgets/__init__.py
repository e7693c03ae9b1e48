"""Qt pieces of the MedGrade Predict panel (the shared ones are in MedGradeWidgets, in MedGradeCore)."""
