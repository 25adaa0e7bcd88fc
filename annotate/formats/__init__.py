"""Exchange at the edges: Label Studio (import, export, the server client), COCO and YOLO
readers and writers, image files, the import summary, and the stage-2 layout encoding."""
