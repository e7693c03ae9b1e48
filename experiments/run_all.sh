#!/bin/bash
# The whole glioma-lgg-tcga experiment, one heavy process at a time (nice 15). Usage:
#   experiments/run_all.sh /tmp/lgg-pre experiments/results
set -e
PRE=${1:-/tmp/lgg-pre}; RES=${2:-experiments/results}
cd "$(dirname "$0")"
nice -n 15 python prepare_cohort.py --out "$PRE"
nice -n 15 python train_shipped.py --pre "$PRE" --results "$RES" --tmp /tmp/medgrade-shipped \
  --seg-out ../MedGradeSegment/MedGradeSegmentLib/bundled_models --grade-out ../MedGradePredict/MedGradePredictLib/bundled_models
nice -n 15 python seg_cv.py --pre "$PRE" --out "$RES/seg_cv"
nice -n 15 python grade_cv.py --pre "$PRE" --out "$RES/grade_cv"
