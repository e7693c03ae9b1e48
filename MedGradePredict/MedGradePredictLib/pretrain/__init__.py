"""Self-supervised pre-training of multi-view images: UMAE (uniform noise masking, cross-convolution
projection, per-view decoders with residual cross-attention) and plain MAE of the same size, and
fine-tuning of the pre-trained ViT encoder into single-view classifiers.

``masking`` (UNM, random), ``encoder`` (ViT + CCP), ``decoder`` (RCA decoders, masked MSE), ``model``
(UMAE / MAE), ``finetune`` (classifier, linear probe, transfer into other graders), ``data`` + ``sources``
(BreakHis, views CSV, MRI slices). The training runner's ``umae-pretrain`` / ``umae-finetune`` kinds
live in ``MedGradeTrainLib.kinds.umae`` (dependencies point Train -> Predict).
"""
