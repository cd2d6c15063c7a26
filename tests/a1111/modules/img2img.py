"""Mirrors modules/img2img.py (v1.10.1) `process_batch` (lines 19-140), the img2img *Batch* tab: the
seed fixed once (`processing.fix_seed`), then for each file one run of the same `p`, the file given as
`p.init_images = [img] * p.batch_size` (line 72) with `p.batch_size` as the previous file's run left
it; the runs' images and infotexts gathered.

Departures: files arrive as PIL images (A1111 reads them from a folder or the upload); no mask
folder, PNG info or output folder."""
from modules import processing


def process_batch(p, batch_images):
    processing.fix_seed(p)
    images, infotexts = [], []
    for img in batch_images:
        p.init_images = [img] * p.batch_size
        proc = processing.process_images(p)
        images.extend(proc.images)
        infotexts.extend(proc.infotexts)
    return images, infotexts
