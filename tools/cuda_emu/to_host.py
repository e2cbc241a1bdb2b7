"""Turns one of cuda/*.cu into host C++ for the kernel emulator (emu.h):
kernel<<<grid, block, shared, stream>>>(args) becomes
ln_emu_launch(grid, block, [&]() { kernel(args); }). Writes to stdout."""
import re, sys

src = open(sys.argv[1]).read()
out, i = [], 0
pat = re.compile(r'([A-Za-z_]\w*(?:<[^<>;]*>)?)<<<')
while True:
    m = pat.search(src, i)
    if not m:
        out.append(src[i:]); break
    out.append(src[i:m.start()])
    name = m.group(1)
    j = src.index('>>>', m.end())
    config = src[m.end():j]
    k = j + 3
    assert src[k] == '(', src[k:k+40]
    depth, p = 0, k
    while True:
        c = src[p]
        if c == '(': depth += 1
        elif c == ')':
            depth -= 1
            if depth == 0: break
        p += 1
    args = src[k+1:p]
    parts = [x.strip() for x in config.split(',')]
    out.append('ln_emu_launch(%s, %s, [&]() { %s(%s); })' % (parts[0], parts[1], name, args))
    i = p + 1
sys.stdout.write(''.join(out))
