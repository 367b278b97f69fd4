// ddnhw bulk cosimulation harness: Python stays out of the per-cycle loop.
//
// Instantiates the DUT named by the macro DDNHW_DUT (default `top`) with the ddnhw stream port
// convention (clk, rst, i__payload/i__valid/i__ready, o__payload/o__valid/o__ready), reads the
// input beats with $readmemh, drives them with random idle cycles (never waiting for ready before
// asserting valid, payload held until the handshake), applies random backpressure on o__ready,
// writes every accepted output beat as one hex line, and raises `done` once NOUT beats came out
// (default N: one output beat per input beat), or with `timeout` set when nothing moved for
// WATCHDOG cycles. Multi-beat vectors (an image streamed as pixels) are just consecutive beats.
//
// Compile-time parameters: IN_W, OUT_W (payload widths in bits). The input file is binary: one
// record of ceil(IN_W / 8) bytes per beat, big-endian (the payload zero-extended to whole bytes),
// read with $fread one beat at a time as it is sent, so the build does not depend on the count.
// Run-time plusargs (all optional except the files):
//   +ddnhw_in=<binary file>  +ddnhw_out=<hex file>  +ddnhw_n=<beats>  +ddnhw_seed=<u32>
//   +ddnhw_nout=<beats>      output beats to wait for (default: ddnhw_n)
//   +ddnhw_idle=<0..65535>   probability * 65536 that an input beat is preceded by an idle cycle
//   +ddnhw_stall=<0..65535>  probability * 65536 that o__ready is low in a cycle
//   +ddnhw_watchdog=<cycles> cycles without any handshake before giving up (default 1000000)
// Plain Verilog-2005; runs on Icarus (-g2005) and Verilator. With the macro DDNHW_SELFCLOCK the
// harness makes its own clock and reset (Verilator needs --timing) and finishes the simulation
// once `done` is high; without it, clk and rst are inputs driven by the cocotb test.

`ifndef DDNHW_DUT
`define DDNHW_DUT top
`endif

module ddnhw_harness #(
    parameter IN_W  = 8,
    parameter OUT_W = 8
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
    reg  [IN_W-1:0]  in_payload;
    reg              in_valid;
    wire             in_ready;
    wire [OUT_W-1:0] out_payload;
    wire             out_valid;
    reg              out_ready;

    `DDNHW_DUT dut (
        .clk(clk),
        .rst(rst),
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
    integer          fd_in;
    integer          got;

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

`ifdef DDNHW_SELFCLOCK
    // Self-clocked (the default of ddnhw.host.cosim's bulk mode): the clock and the reset come
    // from here, so no simulator callback into Python happens per cycle. Period 10 time units,
    // reset high for the first 3 rising edges and released on a falling edge, as the cocotb
    // test does when it drives them. Needs Verilator --timing (Icarus: plain Verilog).
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
        rnd_in     = xs32(seed ^ 32'h9e3779b9) | 32'd1;
        rnd_out    = xs32(seed ^ 32'h7f4a7c15) | 32'd2;
    end

    // Everything below samples the pre-edge values and updates with non-blocking assignments,
    // exactly like the DUT's registers: no races on any simulator.
    reg        in_fire;
    reg        out_fire;
    reg [31:0] next_sent;
    reg [31:0] next_recv;
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
        end else if (!done) begin
            in_fire   = in_valid && in_ready;
            out_fire  = out_valid && out_ready;
            next_sent = n_sent + (in_fire ? 32'd1 : 32'd0);
            next_recv = n_recv + (out_fire ? 32'd1 : 32'd0);
            cycles   <= cycles + 64'd1;
            rnd_in   <= xs32(rnd_in);
            rnd_out  <= xs32(rnd_out);

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
            n_sent <= next_sent;

            // output side
            if (out_fire)
                $fwrite(fd, "%h\n", out_payload);
            n_recv    <= next_recv;
            out_ready <= ({16'd0, rnd_out[31:16]} >= stall_th);

            quiet <= (in_fire || out_fire) ? 32'd0 : quiet + 32'd1;
            if (next_recv >= nout || quiet >= watchdog) begin
                done      <= 1'b1;
                timeout   <= (next_recv < nout);
                in_valid  <= 1'b0;
                out_ready <= 1'b0;
                $fflush(fd);
                $fclose(fd);
            end
        end
    end
endmodule
