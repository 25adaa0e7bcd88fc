# How the fixture exports were made, against a real Label Studio 1.23.2 server (label-studio-sdk 2.1.2).
# Run once by hand with a server on 127.0.0.1:18080; kept so the fixture can be regenerated.
import json, time, sys
from PIL import Image, ImageDraw
from label_studio_sdk import LabelStudio
URL, KEY = "http://127.0.0.1:18080", "0123456789abcdef0123456789abcdef01234567"
for name, size in [("a.png", (200, 100)), ("b.png", (160, 120)), ("c.png", (100, 50))]:
    im = Image.new("RGB", size, (230, 230, 230)); ImageDraw.Draw(im).rectangle((10, 10, 40, 30), fill=(200, 0, 0)); im.save(f"/tmp/lsrun/files/imgs/{name}")
ls = LabelStudio(base_url=URL, api_key=KEY)
config = """<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image"><Label value="red circle"/><Label value="blue square"/></RectangleLabels><TextArea name="caption" toName="image" maxSubmissions="1"/></View>"""
p = ls.projects.create(title="fixture", label_config=config)
ls.projects.import_tasks(id=p.id, request=[{"image": f"/data/local-files/?d=imgs/{n}", "image_id": n[0]} for n in ["a.png", "b.png", "c.png"]])
tasks = list(ls.tasks.list(project=p.id))
users = []
for u in ["ann1", "ann2", "ann3"]:
    users.append(ls.users.create(username=u, email=f"{u}@example.com", password="pass12345!"))
def rect(x, y, w, h, label, ow, oh, rid, score=None):
    r = {"id": rid, "from_name": "label", "to_name": "image", "type": "rectanglelabels", "original_width": ow, "original_height": oh, "image_rotation": 0,
         "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]}}
    if ow is None: del r["original_width"], r["original_height"]
    if score is not None: r["score"] = score
    return r
def cap(t, rid): return {"id": rid, "from_name": "caption", "to_name": "image", "type": "textarea", "value": {"text": [t]}}
size = {"a": (200, 100), "b": (160, 120), "c": (100, 50)}
for t in tasks:
    iid = t.data["image_id"]; ow, oh = size[iid]
    ls.predictions.create(task=t.id, model_version="yolo-v1", score=0.8, result=[rect(5, 10, 20, 30, "red circle", ow, oh, f"p{iid}1", score=0.91), rect(50, 50, 10, 10, "blue square", ow, oh, f"p{iid}2", score=0.42)])
    for k, u in enumerate(users):
        if iid == "b" and k == 2:
            ls.annotations.create(id=t.id, result=[], completed_by=u.id, was_cancelled=True, lead_time=3.0); continue
        res = [rect(5 + k, 10, 20, 30, "red circle", ow if iid != "c" else None, oh if iid != "c" else None, f"{iid}{k}r1")]
        if k != 1: res.append(rect(50, 50, 10 + k, 10, "blue square", ow if iid != "c" else None, oh if iid != "c" else None, f"{iid}{k}r2"))
        res.append(cap(f"caption by {u.username} on {iid}", f"{iid}{k}c"))
        ls.annotations.create(id=t.id, result=res, completed_by=u.id, lead_time=10.5 + k)
out = sys.argv[1]
with open(f"{out}/plain.json", "wb") as f:
    for chunk in ls.projects.exports.download_sync(id=p.id, export_type="JSON", download_all_tasks=True): f.write(chunk)
with open(f"{out}/min.json", "wb") as f:
    for chunk in ls.projects.exports.download_sync(id=p.id, export_type="JSON_MIN", download_all_tasks=True): f.write(chunk)
e = ls.projects.exports.create(id=p.id, title="snap")
for _ in range(60):
    st = ls.projects.exports.get(id=p.id, export_pk=e.id).status
    if st == "completed": break
    time.sleep(0.5)
print("status", st)
with open(f"{out}/snapshot.json", "wb") as f:
    for chunk in ls.projects.exports.download(id=p.id, export_pk=e.id, export_type="JSON"): f.write(chunk)
import time, sys
from label_studio_sdk import LabelStudio
ls = LabelStudio(base_url="http://127.0.0.1:18080", api_key="0123456789abcdef0123456789abcdef01234567")
pid = [p for p in ls.projects.list() if p.title == "fixture"][0].id
e = ls.projects.exports.create(id=pid, title="snap-full", serialization_options={"annotations__completed_by": {"only_id": False}, "predictions": {"only_id": False}})
for _ in range(60):
    st = ls.projects.exports.get(id=pid, export_pk=e.id).status
    if st == "completed": break
    time.sleep(0.5)
with open(sys.argv[1], "wb") as f:
    for chunk in ls.projects.exports.download(id=pid, export_pk=e.id, export_type="JSON"): f.write(chunk)
