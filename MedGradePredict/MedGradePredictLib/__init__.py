"""MedGradePredictLib: case + lesion mask in -> grades, probabilities, explanations out. No Qt."""
