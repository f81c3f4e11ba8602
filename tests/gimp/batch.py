# tests/gimp/batch.py: python-fu batch run of plug-in-liif-upscale, one call per image.
#   LIIF_CASES="in.png:out.png ..." LIIF_MODEL=FILE LIIF_SCALE=2.5 [LIIF_SCALE_Y=..] [LIIF_WIDTH=.. LIIF_HEIGHT=..]
#   gimp-console-3.0 -i --batch-interpreter=python-fu-eval -b "exec(open('batch.py').read())" --quit
# LIIF_ENSEMBLE=1 sets the ensemble argument (the self-ensemble), LIIF_PRECISION=P the precision argument.
# LIIF_MODE=interactive|last-vals runs the dialog / the last values instead (the arguments are then ignored).
# LIIF_EMPTY_LAYER=1 adds a transparent layer on top and selects it (what the dialog must point out).
# LIIF_DEBLOCK=1 sets the deblock argument (JPEG artifacts removed first); LIIF_FLIP=1 flips the image left-right
# first (an edit: the layer no longer holds its JPEG's pixels). LIIF_OPENED=1 takes the inputs from the images GIMP opened
# (named on its command line: opened as File > Open does, with their file; gimp-file-load leaves images without one);
# LIIF_JPEG_ARG=1 passes the input as the jpeg-file argument.
# Prints one "LIIF-BATCH" line per call: status, sizes, the error message; a failed call raises
# unless LIIF_EXPECT_ERROR is set (then the outputs are not written, unless LIIF_SAVE_ON_ERROR is set).
import os
import gi
gi.require_version('Gimp', '3.0')
from gi.repository import Gimp, Gio

env = os.environ
modes = {'interactive': Gimp.RunMode.INTERACTIVE, 'last-vals': Gimp.RunMode.WITH_LAST_VALS}
proc = Gimp.get_pdb().lookup_procedure('plug-in-liif-upscale')
if proc is None:
    raise RuntimeError('plug-in-liif-upscale is not registered')
print('LIIF-BATCH menu-label %s' % proc.get_menu_label(), flush=True)

for case in env.get('LIIF_CASES', '').split():
    inp, out = case.split(':')
    if env.get('LIIF_OPENED'):
        image = next(i for i in Gimp.get_images()
                     if i.get_imported_file() is not None and i.get_imported_file().get_path() == inp)
    else:
        image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(inp))
    if env.get('LIIF_EMPTY_LAYER'):                     # a transparent layer on top, selected
        empty = Gimp.Layer.new(image, 'Empty', image.get_width(), image.get_height(),
                               Gimp.ImageType.RGBA_IMAGE, 100, Gimp.LayerMode.NORMAL)
        image.insert_layer(empty, None, 0)
        image.set_selected_layers([empty])
    if env.get('LIIF_FLIP'):
        image.flip(Gimp.OrientationType.HORIZONTAL)
    w0, h0, dirty0 = image.get_width(), image.get_height(), image.is_dirty()
    cfg = proc.create_config()
    cfg.set_property('run-mode', modes.get(env.get('LIIF_MODE'), Gimp.RunMode.NONINTERACTIVE))
    cfg.set_property('image', image)
    cfg.set_core_object_array('drawables', image.get_selected_drawables())
    cfg.set_property('scale-x', float(env.get('LIIF_SCALE', '2.5')))
    cfg.set_property('scale-y', float(env.get('LIIF_SCALE_Y', env.get('LIIF_SCALE', '2.5'))))
    cfg.set_property('width', int(env.get('LIIF_WIDTH', '0')))
    cfg.set_property('height', int(env.get('LIIF_HEIGHT', '0')))
    cfg.set_property('detail', 1.0)
    cfg.set_property('model', env['LIIF_MODEL'])
    cfg.set_property('device', env.get('LIIF_DEVICE', 'cpu'))
    if env.get('LIIF_ENSEMBLE'):
        cfg.set_property('ensemble', True)
    if env.get('LIIF_DEBLOCK'):
        cfg.set_property('deblock', True)
    if env.get('LIIF_JPEG_ARG'):
        cfg.set_property('jpeg-file', Gio.File.new_for_path(inp))
    if env.get('LIIF_PRECISION'):
        cfg.set_property('precision', env['LIIF_PRECISION'])
    res = proc.run(cfg)
    status = res.index(0)
    msg = res.index(1) if status != Gimp.PDBStatusType.SUCCESS and res.length() > 1 else ''
    print('LIIF-BATCH %s status=%s in=%dx%d out=%dx%d precision=%s dirty-before=%s dirty=%s msg=%s' %
          (os.path.basename(inp), status.value_nick, w0, h0, image.get_width(), image.get_height(),
           image.get_precision().value_nick, dirty0, image.is_dirty(), msg), flush=True)
    if status == Gimp.PDBStatusType.SUCCESS or env.get('LIIF_SAVE_ON_ERROR'):
        Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(out), None)
    elif not env.get('LIIF_EXPECT_ERROR'):
        raise RuntimeError('plug-in-liif-upscale failed on %s: %s' % (inp, msg))
    image.delete()
