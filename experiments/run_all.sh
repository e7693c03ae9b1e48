#!/bin/bash
# The whole glioma-lgg-tcga experiment, one heavy process at a time (nice 5). Usage:
#   experiments/run_all.sh /work/cache-train/lgg-pre experiments/results /work/cache-train/cv
# Segmentation (issue 17): seg_cv.py trains MIG-Net and the MONAI U-Net on the same 5 three-part folds
# (train / inner validation / test); ship_seg.py writes the shipped bundle from the MIG-Net fold with the best
# inner-validation Dice (its best-validation checkpoint), with the CV figures, hardware and budget.
set -e
PRE=${1:-/tmp/lgg-pre}; RES=${2:-experiments/results}; RUNS=${3:-/tmp/medgrade-seg-cv}
cd "$(dirname "$0")"
nice -n 5 python prepare_cohort.py --out "$PRE"
nice -n 5 python seg_cv.py --pre "$PRE" --out "$RUNS" --models mignet unet --folds 5 --epochs 40 --steps 40 --patience 6 --threads 2
mkdir -p "$RES/seg_cv"
for m in mignet unet; do mkdir -p "$RES/seg_cv/$m"; cp "$RUNS/$m/summary.json" "$RES/seg_cv/$m/"; done
cp "$RUNS/folds.json" "$RES/seg_cv/"
nice -n 5 python ship_seg.py --cv "$RES/seg_cv" --run "$RUNS/runs/mignet" --out ../MedGradeSegment/MedGradeSegmentLib/bundled_models
nice -n 5 python train_shipped.py --only grade --pre "$PRE" --results "$RES" --tmp /tmp/medgrade-shipped \
  --seg-out ../MedGradeSegment/MedGradeSegmentLib/bundled_models --grade-out ../MedGradePredict/MedGradePredictLib/bundled_models
nice -n 5 python grade_cv.py --pre "$PRE" --out "$RES/grade_cv"
python update_manifests.py --results "$RES" --grade ../MedGradePredict/MedGradePredictLib/bundled_models/kinet-lgg-g2g3-t1c-flair-v1
python report.py "$RES" > "$RES/report.md"
