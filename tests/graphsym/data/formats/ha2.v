/* a[1:0] + b with carry c, in the style of Yosys write_verilog -noattr: an escaped net, an
   escaped instance name, a constant pin, and outputs tied to an input and to a constant. */
module ha2(a, b, s, c, z, w, y);
  input [1:0] a;
  wire [1:0] a;
  input b;
  wire b;
  output [1:0] s;
  wire [1:0] s;
  output c;
  output z;
  output w;
  output y;
  wire \n1 ;
  XOR2_X1 u1 (.A(a[0]), .B(b), .Y(s[0]));
  AND2_X1 \u2$x  (.A(a[0]), .B(b), .Y(\n1 ));
  XOR2_X1 u3 (.A(a[1]), .B(\n1 ), .Y(s[1]));
  AND2_X1 u4 (.A(a[1]), .B(\n1 ), .Y(c));
  NAND2_X1 u5 (.A(\n1 ), .B(1'h1), .Y(y));
  assign z = 1'h0;
  assign w = a[0];
endmodule
