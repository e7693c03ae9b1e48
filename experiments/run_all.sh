#!/bin/bash
# The whole glioma-lgg-tcga experiment, one heavy process at a time (nice 5). Usage:
#   experiments/run_all.sh /work/cache-train/lgg-pre experiments/results /work/cache-train/cv
# Segmentation (issue 17): seg_cv.py trains MIG-Net and the MONAI U-Net on the same 5 three-part folds
# (train / inner validation / test); ship_seg.py writes each shipped bundle from the fold with the best
# inner-validation Dice (its best-validation checkpoint), with the CV figures, hardware and budget.
# Grading (issue 17): grade_cv.py at 1.875 mm (every method) and at the thesis's 1 mm (KiNet) on the same
# three-part folds; ship_grade.py ships the 1 mm KiNet fold with the lowest inner-validation loss; int8_cv.py
# scores ONNX / INT8 exports of every fold on its test patients (issue 20).
set -e
PRE=${1:-/tmp/lgg-pre}; RES=${2:-experiments/results}; RUNS=${3:-/tmp/medgrade-seg-cv}
cd "$(dirname "$0")"
nice -n 5 python prepare_cohort.py --out "$PRE"
nice -n 5 python seg_cv.py --pre "$PRE" --out "$RUNS" --models mignet unet --folds 5 --epochs 40 --steps 40 --patience 6 --threads 2
mkdir -p "$RES/seg_cv"
for m in mignet unet; do mkdir -p "$RES/seg_cv/$m"; cp "$RUNS/$m/summary.json" "$RES/seg_cv/$m/"; done
cp "$RUNS/folds.json" "$RES/seg_cv/"
for m in mignet unet; do
  nice -n 5 python ship_seg.py --cv "$RES/seg_cv" --run "$RUNS/runs/$m" --model $m --out ../MedGradeSegment/MedGradeSegmentLib/bundled_models
done
nice -n 5 python grade_cv.py --pre "$PRE" --out "$RES/grade_cv" --work "$RUNS/grade-128" --heatmaps
nice -n 5 python grade_cv.py --pre "$PRE" --out "$RES/grade_cv_1mm" --work "$RUNS/grade-1mm" --size 240 --spacing 1.0 \
  --methods kinet early --heatmaps
nice -n 5 python ship_grade.py --cv "$RES/grade_cv_1mm" --baselines "$RES/grade_cv" --run "$RUNS/grade-1mm/runs/kinet" \
  --out ../MedGradePredict/MedGradePredictLib/bundled_models
nice -n 5 python int8_cv.py --pre "$PRE" --work "$RUNS/grade-1mm" --out "$RES/grade_cv_1mm/int8.json"
python report.py "$RES" > "$RES/report.md"
