"""End-to-end tests of examples/detection/train.py on a tiny locally built
VOC-like TFDS dataset, and of the COCO-mAP evaluation path."""

import importlib.util
import os

import numpy as np
import pytest

from training_support import DETECTION
from training_support import run_script


def _script():
    spec = importlib.util.spec_from_file_location("detection_train", DETECTION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flags(data_dir, model_dir, **kw):
    flags = {"data_dir": data_dir, "model_dir": model_dir, "dataset": "tiny_voc",
             "image_size": 64, "batch_size": 4, "epochs": 1, "steps_per_epoch": 2,
             "log_every": 1, "activation": "pwlu"}
    flags.update(kw)
    out = []
    for k, v in flags.items():
        out += [f"--{k}"] if v is True else [f"--{k}", str(v)]
    return out


def test_coco_map_is_one_for_perfect_predictions():
    from keras_acts.training.detection import DetectionTask

    task = DetectionTask()
    task.eval_begin()
    boxes = np.array([[[2, 2, 20, 20], [30, 30, 60, 50], [-1, -1, -1, -1]]], np.float32)
    classes = np.array([[0, 2, -1]], np.float32)
    task.eval_update({"gt_boxes": boxes, "gt_classes": classes, "pred_boxes": boxes,
                      "pred_classes": classes, "pred_confidence": np.array([[0.9, 0.8, -1]]),
                      "weights": np.array([1.0])})
    task.eval_update({"gt_boxes": boxes, "gt_classes": classes, "pred_boxes": boxes,
                      "pred_classes": classes, "pred_confidence": np.zeros([1, 3]),
                      "weights": np.array([0.0])})  # padding: ignored
    result = task.eval_result()
    assert result["mAP50"] == pytest.approx(1.0) and result["mAP"] == pytest.approx(1.0)


def test_yolov8_pwlu_end_to_end(tfds_detection_dir, tmp_path, capsys):
    code = _script().main(_flags(tfds_detection_dir, str(tmp_path)))
    assert code == 0
    out = capsys.readouterr().out
    assert "mAP50=" in out and "loss:" in out and "img/s:" in out and "done: step 2" in out
    assert os.path.exists(tmp_path / "checkpoints" / "ckpt-2.index")


def test_not_a_detection_dataset_is_a_clear_error(tfds_detection_dir, tmp_path, capsys):
    code = _script().main(_flags(str(tmp_path / "nothing"), str(tmp_path / "run")))
    assert code == 2
    assert "nothing" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["acon_c", "meta_acon", "serf"])
def test_yolov8_other_activations(tfds_detection_dir, tmp_path, activation):
    assert _script().main(_flags(tfds_detection_dir, str(tmp_path), activation=activation)) == 0


@pytest.mark.slow
def test_retinanet_serf(tfds_detection_dir, tmp_path):
    assert _script().main(_flags(tfds_detection_dir, str(tmp_path), detector="retinanet",
                                 activation="serf")) == 0


def test_detector_loss_is_built_before_the_train_step():
    # Regression: keras-cv's compiled loss created its Mean trackers inside the
    # first distributed train step, which failed under MirroredStrategy
    # (InvalidArgumentError in __inference_fn_with_cond).
    from keras_acts.training.detection import build_detector

    model = build_detector("yolov8", "tiny_pyramid", "serf", 3, 64)
    assert model._compile_loss.built
    assert {m.name for m in model._compile_loss.metrics} >= {"box_loss", "class_loss"}


@pytest.mark.slow
def test_yolov8_mirrored_two_logical_cpus(tfds_detection_dir, tmp_path):
    proc = run_script(DETECTION, _flags(tfds_detection_dir, str(tmp_path), strategy="mirrored"),
                      logical_cpus=2, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done: step 2" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("detector,backbone,activation", [
    ("yolov8", "yolo_v8_xs", "pwlu"), ("yolov8", "yolo_v8_xs", "acon_c"),
    ("retinanet", "resnet18", "serf"),
])
def test_real_detector_backbones(tfds_detection_dir, tmp_path, detector, backbone, activation):
    flags = _flags(tfds_detection_dir, str(tmp_path), detector=detector, backbone=backbone,
                   source="keras_cv", activation=activation, eval_steps=1)
    assert _script().main(flags) == 0
