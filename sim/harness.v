// ddnhw bulk cosimulation harness: Python stays out of the per-cycle loop.
//
// Instantiates the DUT named by the macro DDNHW_DUT (default `top`) with the ddnhw stream port
// convention (clk, rst, i__payload/i__valid/i__ready, o__payload/o__valid/o__ready), reads the
// input beats one at a time from a binary file ($fread), drives them with random idle cycles (never waiting for ready before
// asserting valid, payload held until the handshake), applies random backpressure on o__ready,
// writes every accepted output beat as one hex line, and raises `done` once NOUT beats came out
// (default N: one output beat per input beat), or with `timeout` set when nothing moved for
// WATCHDOG cycles. Multi-beat vectors (an image streamed as pixels) are just consecutive beats.
//
// Compile-time parameters: IN_W, OUT_W (payload widths in bits), DEPTH (most reset cycles). The
// input file is binary: one record of ceil(IN_W / 8) bytes per beat, big-endian (the payload
// zero-extended to whole bytes), read as the beats are sent, so the build does not depend on
// their count. With the macro DDNHW_SELFCLOCK the harness makes its own clock and reset
// (Verilator needs --timing) and ends the run once `done` is high; without it, clk and rst are
// inputs driven by the cocotb test.
// Run-time plusargs (all optional except the files):
//   +ddnhw_in=<binary file>  +ddnhw_out=<hex file>  +ddnhw_n=<beats>  +ddnhw_seed=<u32>
//   +ddnhw_nout=<beats>      output beats to wait for (default: ddnhw_n)
//   +ddnhw_idle=<0..65535>   probability * 65536 that an input beat is preceded by an idle cycle
//   +ddnhw_stall=<0..65535>  probability * 65536 that o__ready is low in a cycle
//   +ddnhw_watchdog=<cycles> cycles without any handshake before giving up (default 1000000)
// Resets in the middle of the stream (all optional):
//   +ddnhw_resets=<hex file> +ddnhw_nres=<count>  cycle numbers (ascending) at which the DUT's
//       reset is asserted for 1-4 cycles (random), inputs idle and o__ready low meanwhile. The
//       beat handshaken in the cycle of the decision still counts; the input stream then goes on
//       at the next vector boundary (a partly sent vector is abandoned), so the DUT gets a fresh
//       stream of whole vectors. The run ends when every input beat is sent and the outputs of
//       the vectors sent since the last reset have all come out.
//   +ddnhw_bin=<beats> +ddnhw_bout=<beats>  input/output beats per vector (default 1)
//   +ddnhw_marks=<file>  one line per reset: "<output beats so far> <next input beat>" (decimal)
// With the macro DDNHW_LOAD (a DUT whose weights are loaded after reset, e.g. into SPRAM) the
// harness also drives the DUT's w stream (w__payload/w__valid/w__ready) with the words of
//   +ddnhw_load=<hex file>  +ddnhw_nload=<words>   (LOAD_W bits each, at most LOAD_DEPTH)
// back to back from reset, while the inputs are offered as usual.
// Plain Verilog-2005; runs on Icarus (-g2005) and Verilator.

`ifndef DDNHW_DUT
`define DDNHW_DUT top
`endif

module ddnhw_harness #(
    parameter IN_W  = 8,
    parameter OUT_W = 8,
    parameter DEPTH = 1024,
    parameter LOAD_W = 16,
    parameter LOAD_DEPTH = 1
) (
`ifdef DDNHW_SELFCLOCK
    output reg         clk,
    output reg         rst,
`else
    input  wire        clk,
    input  wire        rst,
`endif
    output reg         done,
    output reg         timeout,
    output reg  [63:0] cycles,
    output reg  [31:0] n_sent,
    output reg  [31:0] n_recv
);
    localparam IN_BYTES = (IN_W + 7) / 8;
    reg  [8*IN_BYTES-1:0] next_word;
    integer          fd_in;
    integer          got;
    reg  [IN_W-1:0]  in_payload;
    reg              in_valid;
    wire             in_ready;
    wire [OUT_W-1:0] out_payload;
    wire             out_valid;
    reg              out_ready;

    reg  [2:0]       rst_left;      // cycles of mid-stream reset still to go
    wire             dut_rst = rst | (rst_left != 3'd0);

`ifdef DDNHW_LOAD
    reg  [LOAD_W-1:0] load_mem [0:LOAD_DEPTH-1];
    reg  [LOAD_W-1:0] w_payload;
    reg               w_valid;
    wire              w_ready;
    reg  [31:0]       n_load;
    reg  [31:0]       nload;
    reg  [8*1024-1:0] load_file;
`endif

    `DDNHW_DUT dut (
        .clk(clk),
        .rst(dut_rst),
`ifdef DDNHW_LOAD
        .w__payload(w_payload),
        .w__valid(w_valid),
        .w__ready(w_ready),
`endif
        .i__payload(in_payload),
        .i__valid(in_valid),
        .i__ready(in_ready),
        .o__payload(out_payload),
        .o__valid(out_valid),
        .o__ready(out_ready)
    );

    reg [8*1024-1:0] in_file;
    reg [8*1024-1:0] out_file;
    reg [31:0]       n;
    reg [31:0]       nout;
    reg [31:0]       seed;
    reg [31:0]       idle_th;
    reg [31:0]       stall_th;
    reg [31:0]       watchdog;
    reg [31:0]       quiet;
    reg [31:0]       rnd_in;
    reg [31:0]       rnd_out;
    integer          fd;
    reg [63:0]       rmem [0:DEPTH-1];  // reset cycles
    reg [31:0]       nres;
    reg [31:0]       ri;
    reg [31:0]       bin;
    reg [31:0]       bout;
    reg [63:0]       seg_in;           // input beats since the last reset
    reg [63:0]       seg_out;          // output beats since the last reset
    reg [8*1024-1:0] res_file;
    reg [8*1024-1:0] marks_file;
    integer          mfd;

`ifdef DDNHW_SELFCLOCK
    // Self-clocked (ddnhw.host.cosim's bulk mode): the clock and the reset come from here, so
    // no simulator callback into Python happens per cycle. Period 10 time units, reset high for
    // the first 3 rising edges and released on a falling edge, as the cocotb test does when it
    // drives them.
    initial begin
        clk = 1'b0;
        rst = 1'b1;
        forever #5 clk = ~clk;
    end
    initial begin
        repeat (3) @(posedge clk);
        @(negedge clk);
        rst = 1'b0;
        wait (done);                // cocotb ends the run when its test sees done;
        repeat (16) @(posedge clk); // this only backs it up
        $finish;
    end
`endif

    // xorshift32; never reaches zero from a non-zero state
    function [31:0] xs32;
        input [31:0] s;
        reg   [31:0] x;
        begin
            x = s;
            x = x ^ (x << 13);
            x = x ^ (x >> 17);
            x = x ^ (x << 5);
            xs32 = x;
        end
    endfunction

    initial begin
        if (!$value$plusargs("ddnhw_in=%s", in_file)) begin
            $display("ddnhw_harness: ERROR: +ddnhw_in=<file> missing");
            $finish;
        end
        if (!$value$plusargs("ddnhw_out=%s", out_file)) begin
            $display("ddnhw_harness: ERROR: +ddnhw_out=<file> missing");
            $finish;
        end
        if (!$value$plusargs("ddnhw_n=%d", n))               n = 0;
        if (!$value$plusargs("ddnhw_nout=%d", nout))         nout = n;
        if (!$value$plusargs("ddnhw_seed=%d", seed))         seed = 1;
        if (!$value$plusargs("ddnhw_idle=%d", idle_th))      idle_th = 0;
        if (!$value$plusargs("ddnhw_stall=%d", stall_th))    stall_th = 0;
        if (!$value$plusargs("ddnhw_watchdog=%d", watchdog)) watchdog = 1000000;
        fd_in = $fopen(in_file, "rb");
        if (fd_in == 0) begin
            $display("ddnhw_harness: ERROR: cannot open %0s", in_file);
            $finish;
        end
        if (!$value$plusargs("ddnhw_nres=%d", nres))         nres = 0;
        if (!$value$plusargs("ddnhw_bin=%d", bin))           bin = 1;
        if (!$value$plusargs("ddnhw_bout=%d", bout))         bout = 1;
        if (nres > DEPTH) begin
            $display("ddnhw_harness: ERROR: nres=%0d exceeds DEPTH=%0d", nres, DEPTH);
            $finish;
        end
        mfd = 0;
        if (nres > 0) begin
            if (!$value$plusargs("ddnhw_resets=%s", res_file)) begin
                $display("ddnhw_harness: ERROR: +ddnhw_resets=<file> missing");
                $finish;
            end
            $readmemh(res_file, rmem, 0, nres - 1);
            if ($value$plusargs("ddnhw_marks=%s", marks_file))
                mfd = $fopen(marks_file, "w");
        end
        ri       = 32'd0;
        rst_left = 3'd0;
        seg_in   = 64'd0;
        seg_out  = 64'd0;
        fd = $fopen(out_file, "w");
        if (fd == 0) begin
            $display("ddnhw_harness: ERROR: cannot open %0s", out_file);
            $finish;
        end
        in_valid   = 1'b0;
        in_payload = {IN_W{1'b0}};
        out_ready  = 1'b0;
        done       = 1'b0;
        timeout    = 1'b0;
        cycles     = 64'd0;
        n_sent     = 32'd0;
        n_recv     = 32'd0;
        quiet      = 32'd0;
`ifdef DDNHW_LOAD
        if (!$value$plusargs("ddnhw_load=%s", load_file)) begin
            $display("ddnhw_harness: ERROR: +ddnhw_load=<file> missing");
            $finish;
        end
        if (!$value$plusargs("ddnhw_nload=%d", nload)) nload = 0;
        if (nload > LOAD_DEPTH) begin
            $display("ddnhw_harness: ERROR: nload=%0d exceeds LOAD_DEPTH=%0d", nload, LOAD_DEPTH);
            $finish;
        end
        if (nload > 0)
            $readmemh(load_file, load_mem, 0, nload - 1);
        w_valid   = 1'b0;
        w_payload = {LOAD_W{1'b0}};
        n_load    = 32'd0;
`endif
        rnd_in     = xs32(seed ^ 32'h9e3779b9) | 32'd1;
        rnd_out    = xs32(seed ^ 32'h7f4a7c15) | 32'd2;
    end

`ifdef DDNHW_LOAD
    // the load stream: every word once, in order, valid from reset on
    reg [31:0] next_load;
    always @(posedge clk) begin
        if (rst) begin
            w_valid <= 1'b0;
            n_load  <= 32'd0;
        end else begin
            next_load = n_load + ((w_valid && w_ready) ? 32'd1 : 32'd0);
            n_load <= next_load;
            if (!w_valid || w_ready) begin
                if (next_load < nload) begin
                    w_valid   <= 1'b1;
                    w_payload <= load_mem[next_load];
                end else begin
                    w_valid <= 1'b0;
                end
            end
        end
    end
`endif

    // Everything below samples the pre-edge values and updates with non-blocking assignments,
    // exactly like the DUT's registers: no races on any simulator.
    reg        in_fire;
    reg        out_fire;
    reg [31:0] next_sent;
    reg [31:0] next_recv;
    reg [31:0] restart;
    reg        complete;
    always @(posedge clk) begin
        if (rst) begin
            in_valid  <= 1'b0;
            out_ready <= 1'b0;
            n_sent    <= 32'd0;
            n_recv    <= 32'd0;
            cycles    <= 64'd0;
            quiet     <= 32'd0;
            done      <= 1'b0;
            timeout   <= 1'b0;
            rst_left  <= 3'd0;
            ri        <= 32'd0;
            seg_in    <= 64'd0;
            seg_out   <= 64'd0;
        end else if (!done) begin
            in_fire   = in_valid && in_ready;
            out_fire  = out_valid && out_ready;
            next_sent = n_sent + (in_fire ? 32'd1 : 32'd0);
            next_recv = n_recv + (out_fire ? 32'd1 : 32'd0);
            cycles   <= cycles + 64'd1;
            rnd_in   <= xs32(rnd_in);
            rnd_out  <= xs32(rnd_out);
            if (out_fire)
                $fwrite(fd, "%h\n", out_payload);
            n_recv <= next_recv;

            if (rst_left != 3'd0) begin
                // the DUT is in reset: nothing moves (valid and ready are low)
                rst_left <= rst_left - 3'd1;
                quiet    <= 32'd0;
            end else if (ri < nres && cycles >= rmem[ri]) begin
                // reset the DUT from the next cycle on; go on at the next vector boundary
                restart   = ((next_sent + bin - 32'd1) / bin) * bin;
                rst_left  <= 3'd1 + {1'b0, rnd_in[1:0]};
                ri        <= ri + 32'd1;
                n_sent    <= restart;
                got = $fseek(fd_in, restart * IN_BYTES, 0);
                seg_in    <= 64'd0;
                seg_out   <= 64'd0;
                in_valid  <= 1'b0;
                out_ready <= 1'b0;
                quiet     <= 32'd0;
                if (mfd != 0)
                    $fwrite(mfd, "%0d %0d\n", next_recv, restart);
            end else begin
                // input side: only change valid/payload when no beat is pending
                if (!in_valid || in_ready) begin
                    if (next_sent < n && {16'd0, rnd_in[31:16]} >= idle_th) begin
                        got = $fread(next_word, fd_in);
                        if (got != IN_BYTES) begin
                            $display("ddnhw_harness: ERROR: %0s ends at beat %0d of %0d",
                                     in_file, next_sent, n);
                            $finish;
                        end
                        in_valid   <= 1'b1;
                        in_payload <= next_word[IN_W-1:0];
                    end else begin
                        in_valid   <= 1'b0;
                    end
                end
                n_sent  <= next_sent;
                seg_in  <= seg_in + (in_fire ? 64'd1 : 64'd0);
                seg_out <= seg_out + (out_fire ? 64'd1 : 64'd0);

                // output side
                out_ready <= ({16'd0, rnd_out[31:16]} >= stall_th);

                quiet <= (in_fire || out_fire) ? 32'd0 : quiet + 32'd1;
                complete = (nres == 0) ? (next_recv >= nout)
                         : (next_sent >= n &&
                            (seg_out + (out_fire ? 64'd1 : 64'd0)) * bin >=
                            (seg_in + (in_fire ? 64'd1 : 64'd0)) * bout);
                if (complete || quiet >= watchdog) begin
                    done      <= 1'b1;
                    timeout   <= !complete;
                    in_valid  <= 1'b0;
                    out_ready <= 1'b0;
                    $fflush(fd);
                    $fclose(fd);
                    if (mfd != 0)
                        $fclose(mfd);
                end
            end
        end
    end
endmodule
