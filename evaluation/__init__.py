"""Evaluation of translated images: the measures of the papers (FID/KID through Inception,
attention MAE/IoU, background preservation, PSNR/SSIM) and the offline ones (a domain
classifier the project trains itself), reports and leaderboards.

``scripts/evaluate.py`` and ``scripts/compare.py`` are the command-line entry points; this
package reads what ``test.py`` wrote (``util/results.py``) and imports no model.
"""
