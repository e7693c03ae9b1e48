"""The MedGrade Predict panel's state and decisions, without Qt (the module file only binds signals)."""
