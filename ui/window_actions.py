"""The main window's actions, menus, toolbar and canvas menus."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence


class WindowActions:
    """Mixed into :class:`~ui.main_window.MainWindow`: builds every QAction and where it appears."""

    def _action(self, text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda *_: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        stack = self.document.undo_stack
        self.new_action = self._action("&New", self.new, QKeySequence.StandardKey.New)
        self.open_action = self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.save_action = self._action("&Save", self.save, QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("Save &As…", self.save_as, QKeySequence.StandardKey.SaveAs)
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.undo_action = stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Y")])
        self.copy_action = self._action("&Copy", self.copy, QKeySequence.StandardKey.Copy)
        self.cut_action = self._action("Cu&t", self.cut, QKeySequence.StandardKey.Cut)
        self.paste_action = self._action("&Paste", self.paste, QKeySequence.StandardKey.Paste, "Paste at the mouse")
        self.paste_links_action = self._action(
            "Paste with &Links", self.paste_with_links, "Ctrl+Shift+V", "Paste, keeping the links from nodes that were not copied"
        )
        self.duplicate_action = self._action("D&uplicate", self.duplicate, "Ctrl+D", "Copies of the selected nodes, with their links")
        self.delete_action = self._action("&Delete", self.delete_selected, [QKeySequence(QKeySequence.StandardKey.Delete), QKeySequence("Backspace")])
        self.select_all_action = self._action("Select &All", self.canvas.select_all, QKeySequence.StandardKey.SelectAll)
        self.bypass_action = self._action(
            "&Bypass", lambda: self.toggle_mode("bypass"), "Ctrl+B", "The selected nodes pass each input on to the first output of its type"
        )
        self.mute_action = self._action("&Mute", lambda: self.toggle_mode("mute"), "Ctrl+M", "The selected nodes, and what needs them, do not run")
        self.rename_action = self._action("&Rename…", self.rename_node, "F2", "Rename the selected node")
        self.help_action = self._action("Node &Help", self.show_node_help, "F1", "What the selected node does, field by field")
        self.group_action = self._action("&Group", self.group_selected, "Ctrl+G", "A titled frame around the selected nodes; moving it moves them")
        self.layout_action = self._action("Auto &Layout", self.auto_layout, "Ctrl+L", "Arrange the nodes left to right, by their real sizes")
        self.color_action = self._action("Node &Colour…", self.choose_color, None, "Colour the selected nodes")
        self.add_node_action = self._action("Add &Node…", self.show_tab_search, None, "Search node types (Tab on the canvas)")
        self.run_action = self._action("&Run", self.run, [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")], "Run the workflow")
        self.run_selected_action = self._action(
            "Run &Selected Nodes", self.run_selected, [QKeySequence("Ctrl+Shift+Return"), QKeySequence("Ctrl+Shift+Enter")],
            "Run the selected nodes and what they need (also: right click on a node)",
        )
        self.stop_action = self._action("&Stop", self.stop, "Ctrl+.", "Stop the run")
        self.stop_action.setEnabled(False)
        self.fit_action = self._action("&Fit All", self.fit_all, "F", "Show every node (at a zoom where text stays legible)")
        self.reload_plugins_action = self._action(
            "&Reload Plugin Folders", self.reload_plugins, None, "Re-import the plugin folders: new and changed node types appear"
        )
        self.show_plugins_action = self._action("Show &Plugins…", self.show_plugins, None, "Every plugin, its node types and errors")
        # shortcuts of canvas actions must not steal keys from text fields inside nodes
        for action in (self.copy_action, self.cut_action, self.paste_action, self.paste_links_action, self.duplicate_action,
                       self.delete_action, self.select_all_action, self.bypass_action, self.mute_action, self.rename_action,
                       self.help_action, self.group_action, self.fit_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.removeAction(action)  # only while the canvas has focus (the log and palette keep their keys)
            self.canvas.viewer().addAction(action)

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for action in (self.new_action, self.open_action):
            file_menu.addAction(action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        for action in (self.save_action, self.save_as_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = bar.addMenu("&Edit")
        for action in (self.undo_action, self.redo_action, None, self.cut_action, self.copy_action, self.paste_action,
                       self.paste_links_action, self.duplicate_action, self.delete_action, self.select_all_action, None,
                       self.add_node_action, self.rename_action, self.color_action, self.bypass_action, self.mute_action,
                       self.group_action, None, self.layout_action):
            edit_menu.addSeparator() if action is None else edit_menu.addAction(action)
        run_menu = bar.addMenu("&Run")
        run_menu.addAction(self.run_action)
        run_menu.addAction(self.run_selected_action)
        run_menu.addAction(self.stop_action)
        plugins_menu = bar.addMenu("&Plugins")
        plugins_menu.addAction(self.reload_plugins_action)
        plugins_menu.addAction(self.show_plugins_action)
        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.fit_action)
        for dock in (self.palette_dock, self.image_dock, self.log_dock):
            view_menu.addAction(dock.toggleViewAction())
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.help_action)

        self._build_toolbar(stack)
        # right click on empty canvas
        self.canvas_menu_actions = [self.add_node_action, self.paste_action, self.group_action, None, self.layout_action,
                                    self.fit_action]

    def _build_toolbar(self, stack: Any) -> None:
        """Toolbar buttons with fixed texts, so they never move (the menu's Undo says what it undoes; the
        toolbar's says so in its tooltip)."""
        self.undo_tool = QAction("Undo", self)
        self.undo_tool.triggered.connect(lambda *_: stack.undo())
        self.redo_tool = QAction("Redo", self)
        self.redo_tool.triggered.connect(lambda *_: stack.redo())
        for tool, can, text in ((self.undo_tool, stack.canUndoChanged, stack.undoTextChanged),
                                (self.redo_tool, stack.canRedoChanged, stack.redoTextChanged)):
            tool.setEnabled(False)
            can.connect(tool.setEnabled)
            text.connect(lambda words, t=tool: t.setToolTip(f"{t.text()} {words}".strip()))
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main toolbar")
        toolbar.setMovable(False)
        for action in (self.new_action, self.open_action, self.save_action, None, self.undo_tool, self.redo_tool,
                       None, self.run_action, self.stop_action):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)
        for action in toolbar.actions():
            button = toolbar.widgetForAction(action)
            if button is not None and not action.isSeparator():
                button.setFixedWidth(max(64, button.sizeHint().width()))
        self.toolbar = toolbar
