"""From videos and gaze recordings to Caffe training sets.

Modules (each with one job; none is imported by `import dynsal`):

| module | job |
|---|---|
| `video` | decode video files and frame folders; resize policies |
| `flo` | Middlebury `.flo` read / write |
| `flow` | optical flow methods behind `compute_flow`; `FlowSettings`; mirroring |
| `flow_image` | flow → 3-channel image encodings (Middlebury colour wheel, `xy`) |
| `flow_folder` | a video's flow images and `.flo` files with their settings (`dynsal flow`) |
| `identity` | what an input was (size, modification time, SHA-256): recorded with outputs, compared on reruns |
| `gaze` | DIEM `event_data` → fixation points → fixation and density maps |
| `ground_truth` | dataset layouts and names (DHF1K, Hollywood-2, UCF-Sports); map and fixation readers |
| `dataset` | video + ground truth → aligned (frame, flow image, map) samples; splits; augmentation |
| `sources` | find videos and their gaze files, or a layout's videos |
| `build` | the resumable, atomic build driver shared by the writers (staging folder, manifest) |
| `make_dataset` | the make-lmdb / make-hdf5 job: sources per split, splits built (or sharded), ground truth |
| `lmdb_writer`, `hdf5_writer` | the two Caffe dataset formats the zoo's train_val nets read |
| `images` | atomic PNG and JSON writing |
| `caffe_sources` | Caffe's Data / HDF5Data layers as numpy batch sources (for engines without Caffe) |

See docs/data.md for every choice and default.

Image convention: every image handled here is an OpenCV BGR uint8 H×W×3 array until a dataset
writer stores it; the writers swap to RGB, the order the nets see (see `dynsal.zoo`).
"""
