"""The CT viewer: three linked orthogonal slice views over one :class:`~radiology_app.core.types.Volume`."""

from radiology_app.ui.viewer.model import ViewerModel
from radiology_app.ui.viewer.ortho import OrthoViewerWidget
from radiology_app.ui.viewer.slice_view import SliceViewWidget

__all__ = ["OrthoViewerWidget", "SliceViewWidget", "ViewerModel"]
