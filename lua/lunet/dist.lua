--- lunet.dist: data-parallel training over MPI (Open MPI), one process per
-- device. Run a script with `mpirun -np N lua5.4 script.lua`:
--
--   local dist = lunet.dist
--   local rank, size = dist.init()            -- 0-based rank, as MPI numbers it
--   local ddp = dist.DataParallel(model)      -- every rank starts from rank 0's weights
--   local loader = lunet.data.DataLoader(train, {batch_size = 32, shuffle = true, seed = 1,
--     rank = rank, world = size})              -- this rank's 32 of each global batch of 32*size
--   for x, y in loader:iter() do
--     optimizer:zero_grad()
--     local out = model:forward(x)
--     criterion:forward(out, y)
--     model:backward(x, criterion:backward(out, y))
--     ddp:sync()                              -- one allreduce-average of all gradients
--     optimizer:step()
--   end
--
-- N processes with batch B each then compute what one process with batch N*B
-- computes (the same updates, to float rounding).
--
-- The collectives live in lunet/dist.so (csrc/dist/), built when CMake finds
-- MPI (Debian: libopenmpi-dev openmpi-bin). Without it, or when the script is
-- not started by mpirun, this module runs as rank 0 of 1 and the collectives
-- do nothing (a sum over one process is its own value).
--
-- Tensors on CPU ("cpu", "ref") go through MPI directly. CUDA tensors are
-- copied to a host buffer, reduced there and copied back, unless
-- lunet/dist.so was built with NCCL (cmake -DLUNET_NCCL=ON, off by default:
-- that path has not run on a GPU yet), which reduces them on the GPU.
--
-- Safety: before any data moves, the ranks compare what each is about to do
-- (kind, reduction, root, dtype, shape, call count); a mismatch is an error on
-- every rank naming each rank's call, never a hang or a wrong sum. A rank that
-- ends with an error stops the whole job (MPI_Abort) naming itself, so the
-- others never wait for it forever; a rank that ends normally while another
-- still waits in a collective makes that collective fail with an error.
-- A rank that hangs (neither fails nor arrives) is caught with
-- LUNET_DIST_TIMEOUT=<seconds> in the environment: a rank that waits longer
-- than that for the others stops the job, saying where it waited.
local core = require("lunet.core")

local dist = {}

local INSTALL_HINT = "install Open MPI (Debian: apt-get install libopenmpi-dev openmpi-bin) and " ..
  "rebuild lunet (luarocks make, or scripts/setup.sh)"

local state = { initialized = false, rank = 0, size = 1, local_rank = 0, local_size = 1 }

-- lunet/dist.so, loaded once: the C module is named like this file, so it is
-- found on package.cpath and opened with package.loadlib.
local mpi, mpi_missing
local function load_mpi()
  if mpi or mpi_missing then return mpi, mpi_missing end
  local path = package.searchpath("lunet.dist", package.cpath)
  if not path then
    mpi_missing = "lunet was built without MPI (lunet/dist.so is not on package.cpath): " .. INSTALL_HINT
    return nil, mpi_missing
  end
  local open, err = package.loadlib(path, "luaopen_lunet_dist")
  if not open then
    mpi_missing = ("could not load %s: %s"):format(path, tostring(err))
    return nil, mpi_missing
  end
  mpi = open()
  return mpi
end

--- true when lunet/dist.so (MPI) is available, else false and the reason.
function dist.available()
  local m, why = load_mpi()
  if m then return true end
  return false, why
end

--- Whether this process was started by an MPI launcher (mpirun, mpiexec,
-- srun): the environment names a rank.
local function launched()
  local m = load_mpi()
  if m then return m.launched() end
  for _, name in ipairs({ "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK" }) do
    local v = os.getenv(name)
    if v and v ~= "" then return true end
  end
  return false
end

--- dist.init() -> rank, size. Initializes MPI once (later calls return the
-- same). Without MPI or outside mpirun: 0, 1.
function dist.init()
  if state.initialized then return state.rank, state.size end
  local m, why = load_mpi()
  if m and m.launched() then
    local rank, size = m.init()
    state.rank, state.size = rank, size
    state.local_rank, state.local_size = m.local_rank(), m.local_size()
    state.backend = "mpi"
  else
    state.backend = "local"
    local n = tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or os.getenv("PMI_SIZE") or "1") or 1
    if not m and n > 1 then
      io.stderr:write(("lunet.dist: started by mpirun with %d processes, but %s; every process "
        .. "runs alone as rank 0 of 1\n"):format(n, why))
    end
  end
  state.initialized = true
  return state.rank, state.size
end

function dist.rank() dist.init() return state.rank end
function dist.size() dist.init() return state.size end
--- The rank among the ranks on this machine (for "cuda:<local rank>").
function dist.local_rank() dist.init() return state.local_rank end
function dist.local_size() dist.init() return state.local_size end

--- A table describing the setup: backend ("mpi" or "local"), library (the
-- MPI library's version), nccl, rank, size, local_rank, local_size, and
-- reason (why not MPI) for the local backend.
function dist.info()
  dist.init()
  local m, why = load_mpi()
  return {
    backend = state.backend, rank = state.rank, size = state.size,
    local_rank = state.local_rank, local_size = state.local_size,
    library = m and m.library_version() or nil, nccl = m and m.nccl or false,
    reason = state.backend == "local" and (why or "not started by mpirun") or nil,
  }
end

--- Seconds this process has spent in collectives, and the part of them
-- spent waiting for the other ranks to arrive (the rest moved data).
function dist.seconds()
  if state.backend == "mpi" then return mpi.seconds() end
  return 0, 0
end

local function fail(fname, msg, ...)
  error(("lunet.dist.%s: " .. msg):format(fname, ...), 3)
end

local function check_tensor(fname, t)
  if not core.is_tensor(t) then
    fail(fname, "argument #1: expected a lunet tensor, got %s", type(t))
  end
  if not pcall(t.dim, t) then fail(fname, "argument #1: the tensor was freed") end
end

local OPS = { sum = true, avg = true, max = true }

-- host buffers for CUDA tensors reduced through MPI, one per tensor
local staging = setmetatable({}, { __mode = "k" })

local function host_buffer(t)
  local buf = staging[t]
  if not buf or not pcall(buf.dim, buf) or buf:numel() ~= t:numel() then
    buf = core.empty(t:shape(), { dtype = t:dtype(), device = "cpu" })
    staging[t] = buf
  end
  return buf
end

local function on_cuda(t)
  return t:device().type == "cuda"
end

--- dist.allreduce(t [, op]) reduces t in place across the ranks: op "sum"
-- (default), "avg" (float32: the sum divided by the size) or "max". Returns t.
function dist.allreduce(t, op)
  check_tensor("allreduce", t)
  op = op == nil and "sum" or op
  if not OPS[op] then
    fail("allreduce", "argument #2: op must be \"sum\", \"avg\" or \"max\", got %s", tostring(op))
  end
  if op == "avg" and t:dtype() ~= "float32" then
    fail("allreduce", "\"avg\" needs a float32 tensor, got %s", t:dtype())
  end
  dist.init()
  if state.backend ~= "mpi" then return t end
  if on_cuda(t) then
    if mpi.nccl then
      t:device():synchronize()
      return mpi.allreduce(t, op)
    end
    local host = host_buffer(t)
    host:copy(t)
    mpi.allreduce(host, op)
    t:copy(host)
    return t
  end
  return mpi.allreduce(t, op)
end

--- dist.broadcast(t, root) copies rank `root`'s t (default 0) into every
-- rank's t, in place. Returns t.
function dist.broadcast(t, root)
  check_tensor("broadcast", t)
  root = root == nil and 0 or root
  dist.init()
  if math.type(root) ~= "integer" or root < 0 or root >= state.size then
    fail("broadcast", "argument #2: root must be a rank in 0..%d, got %s", state.size - 1, tostring(root))
  end
  if state.backend ~= "mpi" then return t end
  if on_cuda(t) then
    if mpi.nccl then
      t:device():synchronize()
      return mpi.broadcast(t, root)
    end
    local host = host_buffer(t)
    host:copy(t)
    mpi.broadcast(host, root)
    t:copy(host)
    return t
  end
  return mpi.broadcast(t, root)
end

--- Waits until every rank has called barrier() (a rank that waits sleeps
-- rather than spins, leaving the CPU to the others).
function dist.barrier()
  dist.init()
  if state.backend == "mpi" then mpi.barrier() end
end

--- Stops every rank: prints "lunet.dist: rank R of N: message" and ends the
-- job with MPI_Abort (a single process just exits).
function dist.abort(message, code)
  dist.init()
  code = math.tointeger(code) or 1
  if state.backend == "mpi" then mpi.abort(tostring(message), code) end
  io.stderr:write(("lunet.dist: rank 0 of 1: %s\n"):format(tostring(message)))
  os.exit(code)
end

--- dist.run(fn, ...) calls fn(...); when it raises an error, prints the error
-- and its traceback with this rank's number and stops every rank. Returns
-- fn's results.
function dist.run(fn, ...)
  local results = table.pack(xpcall(fn, function(err)
    return debug.traceback(tostring(err), 2)
  end, ...))
  if not results[1] then dist.abort("failed: " .. tostring(results[2])) end
  return table.unpack(results, 2, results.n)
end

-- DataParallel --------------------------------------------------------------------

local DataParallel = { __name = "lunet.dist.DataParallel" }
DataParallel.__index = DataParallel

local function total_numel(list)
  local n = 0
  for _, t in ipairs(list) do n = n + t:numel() end
  return n
end

-- Views of `flat` shaped like each tensor of `list`, in order.
local function views_into(flat, list)
  local views, offset = {}, 0
  for i, t in ipairs(list) do
    local n = t:numel()
    views[i] = flat:narrow(1, offset + 1, n):reshape(t:shape())
    offset = offset + n
  end
  return views
end

-- Buffers that are not parameters (BatchNorm's running statistics) start
-- as rank 0's too: the state dict, sorted by name, one broadcast per tensor,
-- when it holds more than the parameters.
local function broadcast_buffers(model)
  if type(model.state_dict) ~= "function" or type(model.load_state_dict) ~= "function" then return end
  local state = model:state_dict()
  local names = {}
  for name in pairs(state) do names[#names + 1] = name end
  if #names <= #(model:parameters()) then return end
  table.sort(names)
  for _, name in ipairs(names) do dist.broadcast(state[name], 0) end
  model:load_state_dict(state)
end

--- dist.DataParallel(model [, {flat_parameters=true}]): copies rank 0's
-- parameters to every rank and returns a wrapper whose sync() averages the
-- gradients across ranks with one allreduce over a flat buffer. When the
-- model has flat_parameters(), its own flat gradient is reduced in place
-- (no copies); otherwise (or with flat_parameters=false) the gradients are
-- packed into a buffer of the wrapper's and unpacked after. Buffers such as
-- BatchNorm's running statistics are copied from rank 0 too (once; each rank
-- then updates its own from its shard). Wrap the model before making its
-- optimizer, and do not move it afterwards.
function dist.DataParallel(model, opts)
  if type(model) ~= "table" or type(model.parameters) ~= "function" then
    error(("lunet.dist.DataParallel: argument #1: expected a module, got %s"):format(type(model)), 2)
  end
  opts = opts or {}
  dist.init()
  local self = setmetatable({ module = model, syncs = 0, sync_seconds = 0, wait_seconds = 0 }, DataParallel)
  local use_flat = opts.flat_parameters ~= false and type(model.flat_parameters) == "function"
  if use_flat then
    self.flat_params, self.flat_grads = model:flat_parameters()
    self.first_param = model:parameters()[1]
    self.mode = "flat_parameters"
    dist.broadcast(self.flat_params, 0)
  else
    local params, grads = model:parameters()
    if #params == 0 then
      error("lunet.dist.DataParallel: the model has no parameters", 2)
    end
    local n = total_numel(params)
    local device = params[1]:device()
    self.mode = "packed"
    self.params, self.grads = params, grads
    self.buffer = core.empty({ n }, { dtype = "float32", device = device })
    self.param_views = views_into(self.buffer, params)
    self.grad_views = self.param_views -- the same buffer serves both
    for i, p in ipairs(params) do self.param_views[i]:copy(p) end
    dist.broadcast(self.buffer, 0)
    for i, p in ipairs(params) do p:copy(self.param_views[i]) end
  end
  broadcast_buffers(model)
  return self
end

--- Averages every parameter gradient across the ranks (one allreduce);
-- call it after backward and before the optimizer's step. Its time is
-- counted in ddp.sync_seconds (ddp.syncs calls), of which ddp.wait_seconds
-- waiting for the slowest rank.
function DataParallel:sync()
  if state.size == 1 then return self end
  local t0, _, wait0 = core.clock(), dist.seconds()
  if self.mode == "flat_parameters" then
    -- flat_parameters() called again (by an optimizer made later) may have
    -- given the module new views: reduce the flat gradient they live in now
    if not rawequal(self.module:parameters()[1], self.first_param) then
      self.flat_params, self.flat_grads = self.module:flat_parameters()
      self.first_param = self.module:parameters()[1]
    end
    dist.allreduce(self.flat_grads, "avg")
  else
    local grads, views = self.grads, self.grad_views
    for i, g in ipairs(grads) do views[i]:copy(g) end
    dist.allreduce(self.buffer, "avg")
    for i, g in ipairs(grads) do g:copy(views[i]) end
  end
  self.sync_seconds = self.sync_seconds + (core.clock() - t0)
  self.wait_seconds = self.wait_seconds + (select(2, dist.seconds()) - wait0)
  self.syncs = self.syncs + 1
  return self
end

-- The wrapped module's interface, so the wrapper can stand in for it.
for _, name in ipairs({ "forward", "backward", "parameters", "zero_grad", "train", "eval",
  "state_dict", "load_state_dict" }) do
  DataParallel[name] = function(self, ...)
    return self.module[name](self.module, ...)
  end
end

function DataParallel:__tostring()
  return ("DataParallel(rank %d of %d, %s)"):format(state.rank, state.size, tostring(self.module))
end

dist.DataParallel_class = DataParallel

return dist
