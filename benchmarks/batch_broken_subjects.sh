#!/usr/bin/env bash
# A lab's batch script over a simulated cohort with 2 broken subjects: readable one-line logs,
# exit code 1, every good subject written. Run from the repository root:
#   bash benchmarks/batch_broken_subjects.sh [WORK_DIR]
set -u
work=${1:-runs/batch-demo}
mri2pet=${MRI2PET:-.venv/bin/mri2pet}
rm -rf "$work" && mkdir -p "$work"
"$mri2pet" simulate "$work/cohort" --n 4 --seed 3 > "$work/simulate.log" 2>&1 || { cat "$work/simulate.log"; exit 2; }
echo "not an image" > "$work/cohort/sub-002/anat/sub-002_T1w.nii.gz"          # not a NIfTI
t1="$work/cohort/sub-004/anat/sub-004_T1w.nii.gz"
head -c $(( $(stat -c %s "$t1") / 2 )) "$t1" > "$t1.part" && mv "$t1.part" "$t1"  # truncated gzip
"$mri2pet" synthesize "$work/cohort/participants.tsv" -o "$work/out" > "$work/synthesize.log" 2>&1
code=$?
cat "$work/synthesize.log"
echo "exit code: $code"
ls "$work/out"/*/*_space-T1w_desc-unet_pet.nii.gz
